import Foundation
import Testing

@testable import StraitStore

/// The `Store` contract, run unchanged against `SQLiteStore` and `EtcdStore`.
@Suite(.sharedEtcd)
struct StoreContractTests {
    @Test(arguments: StoreKind.allCases)
    func getPutListDelete(kind: StoreKind) async throws {
        try await withStore(kind) { store, prefix in
            #expect(try await store.get(prefix + "missing") == nil)

            let first = try await store.put(prefix + "b", value: "one".bytes)
            let second = try await store.put(prefix + "a", value: Data())
            let third = try await store.put(prefix + "b", value: "two".bytes)
            #expect(first < second && second < third)

            let b = try #require(try await store.get(prefix + "b"))
            #expect(b.key == prefix + "b")
            #expect(b.value == "two".bytes)
            #expect(b.createRevision == first)
            #expect(b.modRevision == third)
            #expect(b.version == 2)
            #expect(b.lease == nil)
            #expect(try await store.get(prefix + "a")?.value == Data())

            // A sibling that shares the text prefix but not the "directory" stays out.
            try await store.put(String(prefix.dropLast()) + "x", value: "outside".bytes)
            let (items, revision) = try await store.list(prefix: prefix)
            #expect(items.map(\.key) == [prefix + "a", prefix + "b"])
            #expect(revision >= third)

            #expect(try await store.delete(prefix + "b"))
            #expect(try await store.delete(prefix + "b") == false)
            #expect(try await store.get(prefix + "b") == nil)

            // A re-created key starts a new life.
            let reborn = try await store.put(prefix + "b", value: "three".bytes)
            let again = try #require(try await store.get(prefix + "b"))
            #expect(again.createRevision == reborn)
            #expect(again.version == 1)
        }
    }

    @Test(arguments: StoreKind.allCases)
    func createIfAbsent(kind: StoreKind) async throws {
        try await withStore(kind) { store, prefix in
            let key = prefix + "subnets/10.244.1.0-24"
            let revision = try await store.create(key, value: "node-a".bytes)
            let error = await #expect(throws: StoreError.self) {
                try await store.create(key, value: "node-b".bytes)
            }
            #expect(error?.code == .alreadyExists)
            #expect(error?.key == key)
            #expect(try await store.get(key)?.value == "node-a".bytes)
            #expect(try await store.get(key)?.modRevision == revision)
        }
    }

    @Test(arguments: StoreKind.allCases)
    func compareAndSwap(kind: StoreKind) async throws {
        try await withStore(kind) { store, prefix in
            let key = prefix + "config"
            let created = try await store.create(key, value: "v1".bytes)

            // Two writers read the same revision; one wins, the other sees a mismatch.
            let updated = try await store.update(key, value: "writer-1".bytes, ifRevision: created)
            let loser = await #expect(throws: StoreError.self) {
                try await store.update(key, value: "writer-2".bytes, ifRevision: created)
            }
            #expect(loser?.code == .revisionMismatch)
            #expect(try await store.get(key)?.value == "writer-1".bytes)
            #expect(try await store.get(key)?.modRevision == updated)

            // Conditional delete honours the revision too.
            let staleDelete = await #expect(throws: StoreError.self) {
                try await store.delete(key, ifRevision: created)
            }
            #expect(staleDelete?.code == .revisionMismatch)
            #expect(try await store.delete(key, ifRevision: updated))

            let missing = await #expect(throws: StoreError.self) {
                try await store.update(key, value: "ghost".bytes, ifRevision: updated)
            }
            #expect(missing?.code == .notFound)
        }
    }

    @Test(arguments: StoreKind.allCases)
    func racingCreatorsAndUpdatersHaveOneWinner(kind: StoreKind) async throws {
        try await withStore(kind) { store, prefix in
            let key = prefix + "race"
            let created = try await withThrowingTaskGroup(of: Bool.self) { group in
                for writer in 0..<8 {
                    group.addTask {
                        do {
                            try await store.create(key, value: "writer-\(writer)".bytes)
                            return true
                        } catch let error as StoreError where error.code == .alreadyExists {
                            return false
                        }
                    }
                }
                return try await group.reduce(0) { $0 + ($1 ? 1 : 0) }
            }
            #expect(created == 1)

            let revision = try #require(try await store.get(key)).modRevision
            let updated = try await withThrowingTaskGroup(of: Bool.self) { group in
                for writer in 0..<8 {
                    group.addTask {
                        do {
                            try await store.update(key, value: "cas-\(writer)".bytes, ifRevision: revision)
                            return true
                        } catch let error as StoreError where error.code == .revisionMismatch {
                            return false
                        }
                    }
                }
                return try await group.reduce(0) { $0 + ($1 ? 1 : 0) }
            }
            #expect(updated == 1)
            #expect(try await store.get(key)?.version == 2)
        }
    }

    @Test(arguments: StoreKind.allCases)
    func listThenWatchDeliversEveryChangeInOrderExactlyOnce(kind: StoreKind) async throws {
        try await withStore(kind) { store, prefix in
            try await store.put(prefix + "a", value: "a1".bytes)
            try await store.put(prefix + "b", value: "b1".bytes)
            let (items, listed) = try await store.list(prefix: prefix)
            #expect(items.count == 2)

            // Changes between the list and the watch must not be lost.
            let r1 = try await store.put(prefix + "c", value: "c1".bytes)
            let r2 = try await store.update(prefix + "a", value: "a2".bytes, ifRevision: items[0].modRevision)
            try await store.delete(prefix + "b")
            try await store.put("/strait-elsewhere/\(prefix)", value: "not watched".bytes)

            let recorder = await WatchRecorder.start(store.watch(prefix: prefix, afterRevision: listed))
            defer { Task { await recorder.stop() } }
            let r4 = try await store.put(prefix + "d", value: "d1".bytes)
            try await recorder.wait("four events") { $0.count >= 4 }

            // A sentinel after everything: if any event were repeated it would sit before it.
            let sentinel = try await store.put(prefix + "sentinel", value: Data())
            let events = try await recorder.wait("the sentinel") { $0.last?.revision == sentinel }

            #expect(events.count == 5)
            #expect(events.map(\.key) == [prefix + "c", prefix + "a", prefix + "b", prefix + "d", prefix + "sentinel"])
            #expect(events.map(\.revision) == events.map(\.revision).sorted())
            guard events.count == 5 else { return }
            #expect(events[0] == .put(try #require(try await store.get(prefix + "c"))))
            #expect(events[0].revision == r1)
            if case .put(let a) = events[1] {
                #expect(a.value == "a2".bytes && a.version == 2 && a.modRevision == r2)
            } else {
                Issue.record("expected a put for a, got \(events[1])")
            }
            if case .delete(let key, _, let previous) = events[2] {
                #expect(key == prefix + "b")
                #expect(previous?.value == "b1".bytes)
            } else {
                Issue.record("expected a delete for b, got \(events[2])")
            }
            #expect(events[3].revision == r4)
        }
    }

    @Test(arguments: StoreKind.allCases)
    func watchFromNowSeesOnlyLaterChanges(kind: StoreKind) async throws {
        try await withStore(kind) { store, prefix in
            try await store.put(prefix + "old", value: Data())
            let recorder = await WatchRecorder.start(store.watch(prefix: prefix, afterRevision: nil))
            defer { Task { await recorder.stop() } }
            // "From now" starts when the watch is established; keep writing until one is seen.
            var written: Revision = 0
            var events: [WatchEvent] = []
            for attempt in 0..<150 {
                written = try await store.put(prefix + "new", value: "\(attempt)".bytes)
                let seen = try? await recorder.wait(timeout: .milliseconds(200), "any event") { !$0.isEmpty }
                if let seen {
                    events = seen
                    break
                }
            }
            #expect(!events.isEmpty)
            #expect(events.allSatisfy { $0.key == prefix + "new" })
            #expect(events.last?.revision ?? 0 <= written)
        }
    }

    @Test(arguments: StoreKind.allCases)
    func leaseExpiryDeletesKeysAndWatchSeesIt(kind: StoreKind) async throws {
        try await withStore(kind) { store, prefix in
            // Long enough that a loaded test run (blocking calls can starve this task for seconds on a
            // 2-core machine) still creates and reads the key before the lease runs out.
            let lease = try await store.grantLease(ttl: 30)
            let key = prefix + "subnets/10.244.7.0-24"
            let (_, listed) = try await store.list(prefix: prefix)
            try await store.create(key, value: "node".bytes, lease: lease)
            #expect(try await store.get(key)?.lease == lease)

            let recorder = await WatchRecorder.start(store.watch(prefix: prefix, afterRevision: listed))
            defer { Task { await recorder.stop() } }
            let events = try await recorder.wait("the lease's delete") { events in
                events.contains { if case .delete(key, _, _) = $0 { true } else { false } }
            }
            #expect(events.count == 2)
            #expect(try await store.get(key) == nil)

            let renew = await #expect(throws: StoreError.self) { try await store.keepAlive(lease) }
            #expect(renew?.code == .leaseNotFound)
            let reuse = await #expect(throws: StoreError.self) {
                try await store.put(prefix + "late", value: Data(), lease: lease)
            }
            #expect(reuse?.code == .leaseNotFound)
        }
    }

    @Test(arguments: StoreKind.allCases)
    func keepAliveKeepsTheLease(kind: StoreKind) async throws {
        try await withStore(kind) { store, prefix in
            let lease = try await store.grantLease(ttl: 30)
            let key = prefix + "kept"
            try await store.put(key, value: Data(), lease: lease)
            // Renew well inside the TTL (even if this task, or etcd, is starved for many seconds on a loaded
            // 2-core machine) for longer than the TTL.
            for _ in 0..<35 {
                try await Task.sleep(for: .seconds(1))
                let ttl = try await store.keepAlive(lease)
                #expect(ttl >= 2)
            }
            #expect(try await store.get(key)?.lease == lease)
            try await store.revokeLease(lease)
        }
    }

    @Test(arguments: StoreKind.allCases)
    func revokeDeletesTheLeasesKeys(kind: StoreKind) async throws {
        try await withStore(kind) { store, prefix in
            let lease = try await store.grantLease(ttl: 60)
            try await store.put(prefix + "one", value: Data(), lease: lease)
            try await store.put(prefix + "two", value: Data(), lease: lease)
            try await store.put(prefix + "free", value: Data())
            let (_, listed) = try await store.list(prefix: prefix)
            let recorder = await WatchRecorder.start(store.watch(prefix: prefix, afterRevision: listed))
            defer { Task { await recorder.stop() } }

            try await store.revokeLease(lease)
            #expect(try await store.list(prefix: prefix).items.map(\.key) == [prefix + "free"])
            let events = try await recorder.wait("two deletes") { $0.count >= 2 }
            #expect(Set(events.compactMap(\.key)) == [prefix + "one", prefix + "two"])

            let again = await #expect(throws: StoreError.self) { try await store.revokeLease(lease) }
            #expect(again?.code == .leaseNotFound)
            let unknown = await #expect(throws: StoreError.self) {
                try await store.put(prefix + "x", value: Data(), lease: LeaseID(0x5eed))
            }
            #expect(unknown?.code == .leaseNotFound)
        }
    }

    @Test(arguments: StoreKind.allCases)
    func watchBehindCompactionReportsIt(kind: StoreKind) async throws {
        // Compaction is store-wide, so etcd gets its own server here.
        let run: (any Store, String) async throws -> Void = { store, prefix in
            let (_, start) = try await store.list(prefix: prefix)
            try await store.put(prefix + "a", value: "1".bytes)
            try await store.put(prefix + "a", value: "2".bytes)
            let last = try await store.put(prefix + "a", value: "3".bytes)
            try await store.compact(upTo: last)

            let recorder = await WatchRecorder.start(store.watch(prefix: prefix, afterRevision: start))
            try await recorder.waitForEnd()
            let events = await recorder.events
            #expect(events.count == 1)
            if case .compacted(let revision) = events.first {
                #expect(revision >= last)
            } else {
                Issue.record("expected .compacted, got \(events)")
            }

            // A watch from the compacted revision onwards is fine.
            let fresh = await WatchRecorder.start(store.watch(prefix: prefix, afterRevision: last))
            defer { Task { await fresh.stop() } }
            let next = try await store.put(prefix + "a", value: "4".bytes)
            try await fresh.wait("the put after compaction") { $0.last?.revision == next }
        }
        switch kind {
        case .sqlite: try await withStore(kind, run)
        case .etcd: try await EtcdServer.with { server in try await withStore(kind, server: server, run) }
        }
    }
}

import Foundation
import Testing

@testable import StraitStore

/// What only the embedded store does: several connections (processes) on one file, and
/// automatic compaction of the event log.
struct SQLiteStoreTests {
    /// A temporary directory for one test, removed afterwards.
    private func withDirectory<T>(_ body: (String) async throws -> T) async throws -> T {
        let directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("strait-sqlite-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        return try await body(directory.path)
    }

    /// Both ways a watcher can learn of changes: woken by file events (the default), and polling every
    /// 10 ms (the fallback without inotify, and how every watcher worked before).
    @Test(arguments: ["file events", "poll"])
    func twoConnectionsOnOneFileSeeEachOthersWritesAndWatches(wake: String) async throws {
        try await withDirectory { directory in
            let path = directory + "/store.db"
            let apply = try await SQLiteStore(path: path)
            let proxy = try await SQLiteStore(
                path: path, wake: wake == "poll" ? .poll(every: .milliseconds(10)) : .fileEvents(recheck: .seconds(1)))
            defer { Task { await apply.close(); await proxy.close() } }
            #expect((proxy.changes == nil) == (wake == "poll"))

            try await apply.put("/strait/services/default/web", value: "{}".bytes)
            #expect(try await proxy.get("/strait/services/default/web")?.value == "{}".bytes)

            let (_, listed) = try await proxy.list(prefix: "/strait/services/")
            let recorder = await WatchRecorder.start(proxy.watch(prefix: "/strait/services/", afterRevision: listed))
            defer { Task { await recorder.stop() } }

            // Latency from the other connection's commit to the watcher, logged not asserted.
            var latencies: [Duration] = []
            for index in 0..<20 {
                let written = ContinuousClock.now
                let revision = try await apply.put("/strait/services/default/svc-\(index)", value: Data())
                try await recorder.wait("the other connection's write") { $0.last?.revision == revision }
                let arrival = await recorder.arrivals.last ?? .now
                latencies.append(arrival - written)
            }
            let events = await recorder.events
            #expect(events.count == 20)
            let sorted = latencies.sorted()
            print("SQLite cross-connection watch latency (\(wake)): median \(sorted[sorted.count / 2]), max \(sorted.last!)")

            // CAS across connections: the second writer loses.
            let current = try #require(try await proxy.get("/strait/services/default/web"))
            try await apply.update(current.key, value: "a".bytes, ifRevision: current.modRevision)
            let error = await #expect(throws: StoreError.self) {
                try await proxy.update(current.key, value: "b".bytes, ifRevision: current.modRevision)
            }
            #expect(error?.code == .revisionMismatch)
        }
    }

    /// With a recheck far beyond the test's deadline, only the file event can wake the watcher:
    /// another connection's commits, and the watcher's own reaping of a lease nobody renews.
    @Test func fileEventsWakeAWatcherThatNeverPolls() async throws {
        try await withDirectory { directory in
            let path = directory + "/store.db"
            let writer = try await SQLiteStore(path: path)
            let reader = try await SQLiteStore(path: path, wake: .fileEvents(recheck: .seconds(3600)))
            defer { Task { await writer.close(); await reader.close() } }
            #expect(reader.changes != nil, "inotify is available on the test machine")

            let (_, listed) = try await reader.list(prefix: "/n/")
            let recorder = await WatchRecorder.start(reader.watch(prefix: "/n/", afterRevision: listed))
            defer { Task { await recorder.stop() } }
            for index in 0..<5 {
                let revision = try await writer.put("/n/\(index)", value: Data())
                try await recorder.wait("the other connection's put \(index)") { $0.last?.revision == revision }
            }

            // A lease that runs out while nobody writes: the watcher wakes when it is due.
            let lease = try await writer.grantLease(ttl: 2)
            let leased = try? await writer.put("/n/leased", value: Data(), lease: lease)
            if leased != nil {
                try await recorder.wait("the expired lease's delete") { events in
                    events.contains { if case .delete("/n/leased", _, _) = $0 { true } else { false } }
                }
            }
        }
    }

    /// Only the writers' announcement (a touch of the database file) wakes watchers: appends to the
    /// write-ahead log (made before the commit is visible) and writes to other files in the directory
    /// (a log beside the store) wake nobody, so a busy neighbour costs the watching processes nothing.
    @Test func onlyTheCommitAnnouncementWakesWatchers() async throws {
        try await withDirectory { directory in
            let names = ["store.db", "store.db-wal", "agent.log"]
            for name in names {
                #expect(FileManager.default.createFile(atPath: directory + "/" + name, contents: nil), "\(name)")
            }
            // Made after the files, so their creation is not among its events.
            let signal = DatabaseChangeSignal(databasePath: directory + "/store.db")
            defer { signal.stop() }
            #expect(signal.isWatching, "inotify is available on the test machine")
            let start = signal.generation
            for name in names.dropFirst() {
                let handle = try #require(FileHandle(forWritingAtPath: directory + "/" + name))
                for _ in 0..<20 { handle.write(Data("frame\n".utf8)) }
                try handle.close()
            }
            try FileManager.default.setAttributes([.modificationDate: Date()], ofItemAtPath: directory + "/store.db")
            await signal.wait(after: start, timeout: .seconds(60))
            #expect(signal.generation == start + 1, "the touch woke the watcher")
            // A wake the appends caused would be read with the touch's or after it: give it time to
            // show, then the count must still be one.
            try await Task.sleep(for: .milliseconds(300))
            #expect(signal.generation == start + 1, "the appends woke nobody")
        }
    }

    /// Granting and renewing a lease moves no revision, so it wakes no watcher; a put does.
    @Test func leaseGrantsAndRenewalsWakeNoWatcher() async throws {
        try await withDirectory { directory in
            let path = directory + "/store.db"
            let writer = try await SQLiteStore(path: path)
            let reader = try await SQLiteStore(path: path, wake: .fileEvents(recheck: .seconds(3600)))
            defer { Task { await writer.close(); await reader.close() } }
            let signal = try #require(reader.changes, "inotify is available on the test machine")
            let start = signal.generation
            let lease = try await writer.grantLease(ttl: 600)
            try await writer.keepAlive(lease)
            try await writer.put("/n/leased", value: Data(), lease: lease)
            await signal.wait(after: start, timeout: .seconds(60))
            try await Task.sleep(for: .milliseconds(300))
            #expect(signal.generation == start + 1, "only the put woke the reader")
            #expect(try await reader.get("/n/leased")?.lease == lease)
        }
    }

    @Test func concurrentWritersOnSeparateConnectionsSerialize() async throws {
        try await withDirectory { directory in
            let path = directory + "/store.db"
            let stores = try await withThrowingTaskGroup(of: SQLiteStore.self) { group in
                for _ in 0..<4 { group.addTask { try await SQLiteStore(path: path) } }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            try await withThrowingTaskGroup(of: Void.self) { group in
                for (index, store) in stores.enumerated() {
                    group.addTask {
                        for item in 0..<25 { try await store.put("/n/\(index)/\(item)", value: Data()) }
                    }
                }
                try await group.waitForAll()
            }
            let (items, revision) = try await stores[0].list(prefix: "/n/")
            #expect(items.count == 100)
            #expect(Set(items.map(\.modRevision)).count == 100)
            #expect(revision == items.map(\.modRevision).max())
            for store in stores { await store.close() }
        }
    }

    @Test func oldEventsAreCompactedAutomatically() async throws {
        try await withDirectory { directory in
            let store = try await SQLiteStore(path: directory + "/store.db", retainedEvents: 10)
            defer { Task { await store.close() } }
            let (_, start) = try await store.list(prefix: "/")
            for index in 0..<30 { try await store.put("/k/\(index)", value: Data()) }
            let recorder = await WatchRecorder.start(store.watch(prefix: "/", afterRevision: start))
            try await recorder.waitForEnd()
            let events = await recorder.events
            #expect(events.count == 1)
            if case .compacted = events.first {} else { Issue.record("expected .compacted, got \(events)") }
        }
    }

    @Test func expiredLeasesAreReapedByAnotherConnection() async throws {
        try await withDirectory { directory in
            let path = directory + "/store.db"
            let owner = try await SQLiteStore(path: path)
            // A short TTL, doubled while a starved run lets the lease expire between grant and put.
            var ttl: Int64 = 2
            while true {
                let lease = try await owner.grantLease(ttl: ttl)
                do {
                    try await owner.put("/leased", value: Data(), lease: lease)
                    break
                } catch let error as StoreError where error.code == .leaseNotFound && ttl < 256 {
                    ttl *= 2
                }
            }
            await owner.close()  // the owner process is gone; nobody renews

            let other = try await SQLiteStore(path: path)
            defer { Task { await other.close() } }
            // Expiry is due after `ttl` seconds; allow the reaper many times that on a loaded machine.
            let deadline = ContinuousClock.now + .seconds(ttl * 10 + 20)
            while try await other.get("/leased") != nil {
                guard ContinuousClock.now < deadline else { throw TestFailure("leased key never expired") }
                try await Task.sleep(for: .milliseconds(100))
            }
        }
    }
}

import Foundation
import NIOConcurrencyHelpers
import StraitModel
@testable import StraitProxy
import StraitSources
import StraitStore
import Testing

/// A temporary directory for one test, removed afterwards.
func withTemporaryDirectory<T>(_ body: (String) async throws -> T) async throws -> T {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("strait-proxy-\(UUID().uuidString)").path
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: path) }
    return try await body(path)
}

/// Collects a source's events in the background.
actor EventRecorder {
    private(set) var events: [ProxySourceEvent] = []
    private var task: Task<Void, Never>?

    func start(_ source: any ProxySource) {
        task = Task {
            do {
                for try await event in source.events() { self.append(event) }
            } catch {}
        }
    }

    private func append(_ event: ProxySourceEvent) { events.append(event) }
    func stop() { task?.cancel() }

    func waitFor(_ condition: @Sendable ([ProxySourceEvent]) -> Bool) async throws {
        for _ in 0..<6000 {
            if condition(events) { return }
            try await Task.sleep(for: .milliseconds(10))
        }
        throw WaitTimedOut(what: "events: \(events)")
    }
}

@Suite struct StoreSourceTests {
    typealias F = Fixture

    @Test func listsThenWatches() async throws {
        try await withTemporaryDirectory { dir in
            let store = try await SQLiteStore(path: "\(dir)/store.db")
            let objects = ObjectStore(store: store)
            _ = try await objects.apply([.service(F.service("web"))])
            try await store.put("/strait/network/config", value: Data("{}".utf8))

            let recorder = EventRecorder()
            await recorder.start(StoreSource(store: store, retryDelay: .milliseconds(50), log: .silent))
            try await recorder.waitFor { $0.count == 1 }
            guard case .replaceAll(let listed) = await recorder.events[0] else {
                Issue.record("first event is not a full list")
                return
            }
            #expect(listed.map(\.reference) == ["Service default/web"])

            let slice = KubeObject.endpointSlice(F.slice("web-1", service: "web", endpoints: [F.endpoint("10.244.1.5")]))
            _ = try await objects.apply([slice])
            try await recorder.waitFor { $0.count == 2 }
            #expect(await recorder.events[1] == .upsert(slice))

            // An unreadable value is reported as the object going away.
            try await store.put("/strait/services/default/web", value: Data("not json".utf8))
            try await recorder.waitFor { $0.count == 3 }
            #expect(await recorder.events[2] == .delete(ProxyObjectID(kind: .service, namespace: "default", name: "web")))

            try await objects.delete(ProxyObjectID(kind: .endpointSlice, namespace: "default", name: "web-1"))
            try await recorder.waitFor { $0.count == 4 }
            #expect(await recorder.events[3] == .delete(ProxyObjectID(kind: .endpointSlice, namespace: "default", name: "web-1")))
            await recorder.stop()
            await store.close()
        }
    }

    @Test func relistsAfterCompaction() async throws {
        try await withTemporaryDirectory { dir in
            let writer = try await SQLiteStore(path: "\(dir)/store.db")
            let reader = try await SQLiteStore(path: "\(dir)/store.db")
            let objects = ObjectStore(store: writer)
            _ = try await objects.apply([.service(F.service("web"))])

            // A watch that starts behind a compaction reports .compacted; the source lists again.
            let compacting = CompactingStore(base: reader)
            let recorder = EventRecorder()
            await recorder.start(StoreSource(store: compacting, retryDelay: .milliseconds(50), log: .silent))
            try await recorder.waitFor { events in
                events.filter { if case .replaceAll = $0 { true } else { false } }.count >= 2
            }
            await recorder.stop()
            await writer.close()
            await reader.close()
        }
    }

    @Test func feedsTheSyncLoopEndToEnd() async throws {
        try await withTemporaryDirectory { dir in
            let store = try await SQLiteStore(path: "\(dir)/store.db")
            let objects = ObjectStore(store: store)
            _ = try await objects.apply([.service(F.service("web"))])
            let backend = RecordingBackend()
            let loop = SyncLoop(backend: backend, source: StoreSource(store: store, log: .silent),
                                settings: .init(nodeName: "node-a"), conntrack: nil, log: .silent)
            let task = Task { try await loop.run() }
            defer { task.cancel() }
            try await backend.waitFor { $0.count == 1 }
            _ = try await objects.apply([.endpointSlice(F.slice("web-1", service: "web",
                                                                 endpoints: [F.endpoint("10.244.1.5")]))])
            try await backend.waitFor { $0.last?.table.ports[F.name("web")]?.hasEndpoints == true }
            task.cancel()
            await store.close()
        }
    }
}

/// A store whose first watch reports compaction at once, as after `compact(upTo:)` past the
/// listed revision.
final class CompactingStore: Store {
    let base: any Store
    private let compactedOnce = NIOLockedValueBox(false)

    init(base: any Store) { self.base = base }

    func watch(prefix: String, afterRevision: Revision?) -> AsyncThrowingStream<WatchEvent, any Error> {
        let first = compactedOnce.withLockedValue { done in
            defer { done = true }
            return !done
        }
        if first {
            return AsyncThrowingStream { $0.yield(.compacted(revision: afterRevision ?? 0)); $0.finish() }
        }
        return base.watch(prefix: prefix, afterRevision: afterRevision)
    }

    func get(_ key: String) async throws -> KeyValue? { try await base.get(key) }
    func list(prefix: String) async throws -> (items: [KeyValue], revision: Revision) { try await base.list(prefix: prefix) }
    func create(_ key: String, value: Data, lease: LeaseID?) async throws -> Revision {
        try await base.create(key, value: value, lease: lease)
    }
    func update(_ key: String, value: Data, ifRevision: Revision, lease: LeaseID?) async throws -> Revision {
        try await base.update(key, value: value, ifRevision: ifRevision, lease: lease)
    }
    func put(_ key: String, value: Data, lease: LeaseID?) async throws -> Revision {
        try await base.put(key, value: value, lease: lease)
    }
    func delete(_ key: String, ifRevision: Revision?) async throws -> Bool { try await base.delete(key, ifRevision: ifRevision) }
    func grantLease(ttl: Int64) async throws -> LeaseID { try await base.grantLease(ttl: ttl) }
    func keepAlive(_ lease: LeaseID) async throws -> Int64 { try await base.keepAlive(lease) }
    func revokeLease(_ lease: LeaseID) async throws { try await base.revokeLease(lease) }
    func compact(upTo revision: Revision) async throws { try await base.compact(upTo: revision) }
    func close() async {}
}

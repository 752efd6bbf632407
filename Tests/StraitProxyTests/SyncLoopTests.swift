import Foundation
import NIOConcurrencyHelpers
import StraitModel
@testable import StraitProxy
import Testing

/// A backend that records every sync; can be slow and can fail on demand.
final class RecordingBackend: ProxyBackend {
    struct Call: Sendable {
        var full: Bool
        var table: ServiceTable
        var at = ContinuousClock.now
    }
    let mode = ProxyMode.iptables
    let delay: Duration
    private let state = NIOLockedValueBox((calls: [Call](), failuresLeft: 0))

    init(delay: Duration = .zero) { self.delay = delay }

    var calls: [Call] { state.withLockedValue { $0.calls } }
    func failNext(_ count: Int) { state.withLockedValue { $0.failuresLeft = count } }

    struct Injected: Error {}

    func sync(from old: ServiceTable?, to new: ServiceTable) async throws {
        if delay > .zero { try await Task.sleep(for: delay) }
        try state.withLockedValue {
            $0.calls.append(Call(full: old == nil, table: new))
            if $0.failuresLeft > 0 {
                $0.failuresLeft -= 1
                throw Injected()
            }
        }
    }

    func cleanup() async throws {}

    /// Waits until `condition` holds for the calls; after a minute (a hang, not a slow machine) it throws,
    /// so the test fails instead of indexing into calls that never came.
    func waitFor(_ condition: ([Call]) -> Bool) async throws {
        for _ in 0..<6000 {
            if condition(calls) { return }
            try await Task.sleep(for: .milliseconds(10))
        }
        throw WaitTimedOut(what: "calls: \(calls.count)")
    }
}

/// A condition a test waited for never held.
struct WaitTimedOut: Error, CustomStringConvertible {
    let what: String
    var description: String { "timed out waiting; \(what)" }
}

@Suite struct SyncLoopTests {
    typealias F = Fixture

    func start(_ backend: RecordingBackend, _ feed: ProxySourceFeed, syncPeriod: Duration = .seconds(3600),
               minSyncPeriod: Duration = .zero, retryDelay: Duration = .milliseconds(50)) -> (SyncLoop, Task<Void, any Error>) {
        let loop = SyncLoop(backend: backend, source: feed,
                            settings: .init(nodeName: "node-a", minSyncPeriod: minSyncPeriod, syncPeriod: syncPeriod,
                                            retryDelay: retryDelay),
                            conntrack: nil, log: .silent)
        return (loop, Task { try await loop.run() })
    }

    func slice(_ index: Int, service: String = "web") -> KubeObject {
        .endpointSlice(F.slice("web-\(index)", service: service, endpoints: [F.endpoint("10.244.1.\(index % 250 + 1)")]))
    }

    @Test func nothingUntilTheFirstFullList() async throws {
        let backend = RecordingBackend()
        let feed = ProxySourceFeed()
        let (_, task) = start(backend, feed)
        defer { task.cancel() }
        feed.send(.upsert(.service(F.service("web"))))
        try await Task.sleep(for: .milliseconds(200))
        #expect(backend.calls.isEmpty)
        feed.send(.replaceAll([.service(F.service("web")), slice(1)]))
        try await backend.waitFor { $0.count == 1 }
        let first = try #require(backend.calls.first)
        #expect(first.full)
        #expect(first.table.ports[F.name("web")]?.internalEndpoints.count == 1)
    }

    @Test func aLoneChangeIsSyncedAtOnce() async throws {
        let backend = RecordingBackend()
        let feed = ProxySourceFeed()
        let (loop, task) = start(backend, feed)
        defer { task.cancel() }
        feed.send(.replaceAll([.service(F.service("web"))]))
        try await backend.waitFor { $0.count == 1 }
        // No timer is pending (syncPeriod is an hour, minSyncPeriod 0): only the change itself can cause this sync.
        feed.send(.upsert(slice(1)))
        try await backend.waitFor { $0.count == 2 }
        let second = backend.calls[1]
        #expect(!second.full)
        #expect(second.table.ports[F.name("web")]?.hasEndpoints == true)
        #expect(await loop.syncCount == 2)
        #expect(loop.metrics.render().contains("kubeproxy_sync_proxy_rules_endpoint_changes_total 1"))
    }

    @Test func aBurstIsCoalesced() async throws {
        let backend = RecordingBackend(delay: .milliseconds(50))
        let feed = ProxySourceFeed()
        let (_, task) = start(backend, feed)
        defer { task.cancel() }
        feed.send(.replaceAll([.service(F.service("web"))]))
        try await backend.waitFor { $0.count == 1 }
        for index in 1...200 { feed.send(.upsert(slice(index))) }
        try await backend.waitFor { $0.last?.table.ports[F.name("web")]?.allEndpoints.count == 200 }
        try await Task.sleep(for: .milliseconds(200))
        #expect(backend.calls.count <= 5, "200 changes took \(backend.calls.count - 1) syncs")
        #expect(backend.calls.last?.table.ports[F.name("web")]?.allEndpoints.count == 200)
    }

    @Test func minSyncPeriodSpacesSyncs() async throws {
        let backend = RecordingBackend()
        let feed = ProxySourceFeed()
        let (_, task) = start(backend, feed, minSyncPeriod: .milliseconds(300))
        defer { task.cancel() }
        feed.send(.replaceAll([.service(F.service("web"))]))
        try await backend.waitFor { $0.count == 1 }
        feed.send(.upsert(slice(1)))
        try await backend.waitFor { $0.count == 2 }
        // The change waited for the period: the second sync started no sooner than 300 ms after the first.
        let calls = backend.calls
        #expect(calls[1].at - calls[0].at >= .milliseconds(300))
    }

    @Test func periodicFullResync() async throws {
        let backend = RecordingBackend()
        let feed = ProxySourceFeed()
        let (_, task) = start(backend, feed, syncPeriod: .milliseconds(200))
        defer { task.cancel() }
        feed.send(.replaceAll([.service(F.service("web"))]))
        try await backend.waitFor { $0.count == 1 }
        feed.send(.upsert(slice(1)))
        // A periodic sync may land before or after the change's own sync; after the change, with
        // nothing else changing, every further sync is a periodic one: full, of the same table.
        try await backend.waitFor { $0.contains { $0.table.ports[F.name("web")]?.hasEndpoints == true } }
        let changed = backend.calls.firstIndex { $0.table.ports[F.name("web")]?.hasEndpoints == true }!
        try await backend.waitFor { $0.count >= changed + 3 }
        let later = backend.calls[(changed + 1)...]
        #expect(later.allSatisfy { $0.full })
        #expect(later.allSatisfy { $0.table == backend.calls[changed].table })
    }

    @Test func failureBacksOffAndRetriesFully() async throws {
        let backend = RecordingBackend()
        let feed = ProxySourceFeed()
        let (loop, task) = start(backend, feed, retryDelay: .milliseconds(100))
        defer { task.cancel() }
        feed.send(.replaceAll([.service(F.service("web"))]))
        try await backend.waitFor { $0.count == 1 }
        backend.failNext(2)
        let clock = ContinuousClock()
        let sent = clock.now
        feed.send(.upsert(slice(1)))
        try await backend.waitFor { $0.count == 4 }
        // 100 ms then 200 ms of backoff before the third attempt.
        #expect(clock.now - sent >= .milliseconds(300))
        let calls = backend.calls
        #expect(!calls[1].full)
        #expect(calls[2].full && calls[3].full)
        #expect(calls[3].table.ports[F.name("web")]?.hasEndpoints == true)
        #expect(await loop.syncCount == 2)
        #expect(loop.metrics.render().contains("strait_sync_proxy_rules_failures_total 2"))
        try await Task.sleep(for: .milliseconds(300))
        #expect(backend.calls.count == 4)
    }

    @Test func healthGoesBadWhenSyncsStall() async throws {
        let backend = RecordingBackend()
        let feed = ProxySourceFeed()
        let loop = SyncLoop(backend: backend, source: feed,
                            settings: .init(nodeName: "node-a", syncPeriod: .milliseconds(100), retryDelay: .seconds(10)),
                            conntrack: nil, log: .silent)
        let task = Task { try await loop.run() }
        defer { task.cancel() }
        feed.send(.replaceAll([.service(F.service("web"))]))
        try await backend.waitFor { $0.count == 1 }
        #expect(loop.health.status().healthy)
        backend.failNext(100)
        feed.send(.upsert(slice(1)))
        // Every sync now fails: once the change has waited past 2 × syncPeriod the proxy is unhealthy.
        var healthy = true
        for _ in 0..<100 where healthy {
            try await Task.sleep(for: .milliseconds(100))
            healthy = loop.health.status().healthy
        }
        #expect(!healthy)
    }

    @Test func nodeZoneLabelDrivesTopology() async throws {
        let backend = RecordingBackend()
        let feed = ProxySourceFeed()
        let (_, task) = start(backend, feed)
        defer { task.cancel() }
        let hinted = KubeObject.endpointSlice(F.slice("web-1", service: "web", endpoints: [
            F.endpoint("10.244.1.5", forZones: ["a"]), F.endpoint("10.244.2.5", forZones: ["b"]),
        ]))
        feed.send(.replaceAll([.service(F.service("web")), hinted]))
        try await backend.waitFor { $0.count == 1 }
        #expect(backend.calls[0].table.ports[F.name("web")]?.internalEndpoints.count == 2)
        feed.send(.upsert(.node(Node(metadata: ObjectMeta(name: "node-a", labels: ["topology.kubernetes.io/zone": "b"])))))
        try await backend.waitFor { $0.count == 2 }
        #expect(backend.calls[1].full)
        #expect(backend.calls[1].table.ports[F.name("web")]?.internalEndpoints.addresses == ["10.244.2.5"])
    }

    @Test func networkProgrammingLatencyFromTriggerTime() async throws {
        let backend = RecordingBackend()
        let feed = ProxySourceFeed()
        let (loop, task) = start(backend, feed)
        defer { task.cancel() }
        feed.send(.replaceAll([.service(F.service("web"))]))
        try await backend.waitFor { $0.count == 1 }
        let trigger = Date().addingTimeInterval(-2).formatted(.iso8601)
        feed.send(.upsert(.endpointSlice(F.slice("web-1", service: "web", endpoints: [F.endpoint("10.244.1.5")],
                                                annotations: [ProxyObjects.triggerTimeAnnotation: trigger]))))
        try await backend.waitFor { $0.count == 2 }
        let text = loop.metrics.render()
        // The change was triggered 2 s before it was sent: it is counted once, in no bucket below 2 s.
        #expect(text.contains("kubeproxy_network_programming_duration_seconds_count{ip_family=\"IPv4\"} 1"))
        #expect(text.contains("kubeproxy_network_programming_duration_seconds_bucket{ip_family=\"IPv4\",le=\"1\"} 0"))
        #expect(text.contains("kubeproxy_network_programming_duration_seconds_bucket{ip_family=\"IPv4\",le=\"+Inf\"} 1"))
    }
}

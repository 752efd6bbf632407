import Foundation
@testable import StraitProxy
import StraitModel
import Testing

/// kube-proxy's `/healthz` and `/livez` as values: the JSON of its current `ProxyHealth` (per-family
/// status, `nodeEligible`), and the node's eligibility from its Node object.
@Suite struct ProxyHealthTests {
    static let t0 = Date(timeIntervalSince1970: 1_714_564_800.5)

    static func node(deleting: Bool = false, taints: [String] = []) -> Node {
        var meta = ObjectMeta(name: "node-a")
        if deleting { meta.deletionTimestamp = "2024-05-01T12:00:00Z" }
        return Node(metadata: meta, spec: NodeSpec(taints: taints.map { Taint(key: $0, effect: "NoSchedule") }))
    }

    @Test func jsonAsKubeProxyMarshalsIt() {
        let health = ProxyHealth(syncPeriod: 30, families: [.ipv4, .ipv6])
        // Before the first sync: no per-family status; healthy, so lastUpdated is the current time.
        #expect(ProxyHealth.json(health.status(now: Self.t0), includeNode: true)
                == #"{"lastUpdated":"2024-05-01T12:00:00.5Z","currentTime":"2024-05-01T12:00:00.5Z","nodeEligible":true,"healthy":true}"#)

        health.updated(at: Self.t0)
        let later = Self.t0.addingTimeInterval(1)
        #expect(ProxyHealth.json(health.status(now: later), includeNode: false)
                == #"{"lastUpdated":"2024-05-01T12:00:01.5Z","currentTime":"2024-05-01T12:00:01.5Z","healthy":true,"#
                + #""status":{"IPv4":{"lastUpdated":"2024-05-01T12:00:00.5Z","healthy":true},"#
                + #""IPv6":{"lastUpdated":"2024-05-01T12:00:00.5Z","healthy":true}}}"#)

        // An update queued more than 2 × syncPeriod ago and not programmed: unhealthy, lastUpdated the last sync.
        health.queued(at: later)
        let status = health.status(now: Self.t0.addingTimeInterval(100))
        #expect(!status.healthy && status.families.values.allSatisfy { !$0.healthy })
        #expect(ProxyHealth.json(status, includeNode: true).hasPrefix(
            #"{"lastUpdated":"2024-05-01T12:00:00.5Z","currentTime":"2024-05-01T12:01:40.5Z","nodeEligible":true,"healthy":false,"#))
        // Still within the timeout: healthy.
        #expect(health.status(now: later.addingTimeInterval(59)).healthy)
    }

    @Test func aStuckFirstSyncIsUnhealthy() {
        let health = ProxyHealth(syncPeriod: 1)
        health.queued(at: Self.t0)
        #expect(health.status(now: Self.t0.addingTimeInterval(1)).healthy)
        #expect(!health.status(now: Self.t0.addingTimeInterval(3)).healthy)
    }

    @Test func nodeEligibilityFromTheNodeObject() {
        let health = ProxyHealth(syncPeriod: 30)
        #expect(health.nodeEligible, "no Node seen: eligible")
        health.nodeChanged(nil)
        #expect(health.nodeEligible, "a source without Nodes: still eligible")
        health.nodeChanged(Self.node())
        #expect(health.nodeEligible)
        health.nodeChanged(Self.node(taints: ["ToBeDeletedByClusterAutoscaler"]))
        #expect(!health.nodeEligible)
        health.nodeChanged(Self.node(taints: ["node.kubernetes.io/unschedulable"]))
        #expect(health.nodeEligible, "another taint does not count")
        health.nodeChanged(Self.node(deleting: true))
        #expect(!health.nodeEligible)
        health.nodeChanged(Self.node())
        health.nodeChanged(nil)
        #expect(!health.nodeEligible, "a Node seen and then gone")
        // The node is not part of the proxy's health (nor of /livez).
        #expect(health.status().healthy && !health.status().nodeEligible)
    }

    @Test func theSyncLoopPassesThisNodesNodeOn() async throws {
        let feed = ProxySourceFeed()
        let health = ProxyHealth(syncPeriod: 30)
        let loop = SyncLoop(backend: RecordingBackend(), source: feed, settings: .init(nodeName: "node-a"), health: health,
                            conntrack: nil, log: .silent)
        let task = Task { try await loop.run() }
        defer { task.cancel() }
        var other = Self.node(taints: ["ToBeDeletedByClusterAutoscaler"])
        other.metadata.name = "node-b"
        feed.send(.replaceAll([.node(Self.node()), .node(other)]))
        feed.send(.upsert(.node(Self.node(taints: ["ToBeDeletedByClusterAutoscaler"]))))
        var eligible = true
        for _ in 0..<100 where eligible {
            eligible = health.nodeEligible
            if eligible { try await Task.sleep(for: .milliseconds(50)) }
        }
        #expect(!eligible)
        feed.send(.upsert(.node(Self.node())))
        for _ in 0..<100 where !eligible {
            eligible = health.nodeEligible
            if !eligible { try await Task.sleep(for: .milliseconds(50)) }
        }
        #expect(eligible)
    }
}

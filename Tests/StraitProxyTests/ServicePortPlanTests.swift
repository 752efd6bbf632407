import StraitModel
import Testing
@testable import StraitProxy

/// The plan as values: every decision kube-proxy makes for one Service port, table-driven from its
/// semantics (`shared/reference/kube-proxy-semantics.md`; `CategorizeEndpoints` and the per-service
/// part of `syncProxyRules`).
@Suite struct ServicePortPlanTests {
    static let name = ServicePortName(namespace: "ns", name: "svc", port: "http", protocol: .tcp)
    static let podCIDR = IPCIDR("10.244.0.0/16")!
    static let options = ProxyOptions(clusterCIDRs: [podCIDR, IPCIDR("fd00:244::/32")!],
                                      nodeIPs: [IPAddress("192.168.0.1")!])

    static func endpoint(_ address: String, local: Bool = false, ready: Bool = true, terminating: Bool = false,
                         zones: Set<String>? = nil) -> ProxyEndpoint {
        ProxyEndpoint(address: IPAddress(address)!, port: 8080, isLocal: local, isReady: ready,
                      isServing: ready || terminating, isTerminating: terminating, zoneHints: zones)
    }

    static let localReady = endpoint("10.244.1.5", local: true)
    static let remoteReady = endpoint("10.244.2.5")
    static let localTerminating = endpoint("10.244.1.6", local: true, ready: false, terminating: true)
    static let remoteTerminating = endpoint("10.244.2.6", ready: false, terminating: true)

    /// One row: the Service's facts, and what the plan must say.
    struct Row: CustomTestStringConvertible, Sendable {
        var label: String
        var endpoints: [ProxyEndpoint]
        var iTPLocal = false
        var eTPLocal = false
        var nodePort: UInt16?
        var zone: String?
        var clusterIPTraffic: TrafficFate
        var externalTraffic: TrafficFate?
        var clusterPool: [ProxyEndpoint]?
        var localPool: [ProxyEndpoint]?
        var stage: ExternalStage?

        var testDescription: String { label }
    }

    static let shortCircuit = ExternalStage(masqueradeAll: false, shortCircuit: .init(podCIDR: podCIDR))

    static let rows: [Row] = [
        Row(label: "cluster policy: every ready endpoint", endpoints: [localReady, remoteReady, localTerminating],
            clusterIPTraffic: .forward(.cluster), clusterPool: [localReady, remoteReady]),
        Row(label: "no endpoints anywhere: reject", endpoints: [], nodePort: 30080,
            clusterIPTraffic: .reject, externalTraffic: .reject),
        Row(label: "not serving is no endpoint: reject", endpoints: [endpoint("10.244.2.7", ready: false)],
            clusterIPTraffic: .reject),
        Row(label: "no ready endpoint: serving-and-terminating ones", endpoints: [localTerminating, remoteTerminating],
            clusterIPTraffic: .forward(.cluster), clusterPool: [localTerminating, remoteTerminating]),
        Row(label: "iTP Local: the local endpoints only", endpoints: [localReady, remoteReady], iTPLocal: true,
            clusterIPTraffic: .forward(.local), localPool: [localReady]),
        Row(label: "iTP Local, none local: drop, not reject", endpoints: [remoteReady], iTPLocal: true,
            clusterIPTraffic: .drop),
        Row(label: "iTP Local: a local terminating endpoint when no local ready one",
            endpoints: [remoteReady, localTerminating], iTPLocal: true,
            clusterIPTraffic: .forward(.local), localPool: [localTerminating]),
        Row(label: "eTP Cluster NodePort: masquerade, cluster pool", endpoints: [localReady, remoteReady],
            nodePort: 30080, clusterIPTraffic: .forward(.cluster), externalTraffic: .forward(.cluster),
            clusterPool: [localReady, remoteReady], stage: ExternalStage(masqueradeAll: true)),
        Row(label: "eTP Local: external to local, short-circuit to cluster", endpoints: [localReady, remoteReady],
            eTPLocal: true, nodePort: 30080, clusterIPTraffic: .forward(.cluster), externalTraffic: .forward(.local),
            clusterPool: [localReady, remoteReady], localPool: [localReady], stage: shortCircuit),
        Row(label: "eTP Local, none local: external dropped, stage kept for pods and the node",
            endpoints: [remoteReady], eTPLocal: true, nodePort: 30080, clusterIPTraffic: .forward(.cluster),
            externalTraffic: .drop, clusterPool: [remoteReady], stage: shortCircuit),
        Row(label: "eTP Local without external addresses does not apply", endpoints: [remoteReady], eTPLocal: true,
            clusterIPTraffic: .forward(.cluster), clusterPool: [remoteReady]),
        Row(label: "iTP Local + eTP Local: both local, cluster pool for the short-circuit",
            endpoints: [localReady, remoteReady], iTPLocal: true, eTPLocal: true, nodePort: 30080,
            clusterIPTraffic: .forward(.local), externalTraffic: .forward(.local),
            clusterPool: [localReady, remoteReady], localPool: [localReady], stage: shortCircuit),
        Row(label: "iTP Local + eTP Local, none local: both dropped, short-circuit stays",
            endpoints: [remoteReady], iTPLocal: true, eTPLocal: true, nodePort: 30080,
            clusterIPTraffic: .drop, externalTraffic: .drop, clusterPool: [remoteReady], stage: shortCircuit),
        Row(label: "topology hints narrow the cluster pool to this zone",
            endpoints: [endpoint("10.244.1.5", zones: ["a"]), endpoint("10.244.2.5", zones: ["b"])], zone: "a",
            clusterIPTraffic: .forward(.cluster), clusterPool: [endpoint("10.244.1.5", zones: ["a"])]),
        Row(label: "iTP Local + eTP Local: the short-circuit pool honours topology hints too",
            endpoints: [endpoint("10.244.1.5", local: true, zones: ["a"]), endpoint("10.244.2.5", zones: ["b"])],
            iTPLocal: true, eTPLocal: true, nodePort: 30080, zone: "b",
            clusterIPTraffic: .forward(.local), externalTraffic: .forward(.local),
            clusterPool: [endpoint("10.244.2.5", zones: ["b"])],
            localPool: [endpoint("10.244.1.5", local: true, zones: ["a"])], stage: shortCircuit),
        Row(label: "terminating fallback ignores topology hints",
            endpoints: [endpoint("10.244.1.6", ready: false, terminating: true, zones: ["b"]),
                        endpoint("10.244.2.6", ready: false, terminating: true, zones: ["c"])], zone: "a",
            clusterIPTraffic: .forward(.cluster),
            clusterPool: [endpoint("10.244.1.6", ready: false, terminating: true, zones: ["b"]),
                          endpoint("10.244.2.6", ready: false, terminating: true, zones: ["c"])]),
    ]

    @Test(arguments: rows)
    func decides(_ row: Row) throws {
        let entry = ServicePortEntry(name: Self.name, port: 80, clusterIPs: [IPAddress("10.96.0.10")!],
                                     nodePort: row.nodePort, externalTrafficPolicyLocal: row.eTPLocal,
                                     internalTrafficPolicyLocal: row.iTPLocal, allEndpoints: row.endpoints)
        let plan = try #require(entry.decided(nodeName: "node-a", zone: row.zone, options: Self.options).plan(for: .ipv4))
        #expect(plan.clusterIPTraffic == row.clusterIPTraffic)
        #expect(plan.externalTraffic == row.externalTraffic)
        #expect(plan.clusterPool == row.clusterPool)
        #expect(plan.localPool == row.localPool)
        #expect(plan.externalStage == row.stage)
        #expect(plan.firewall == nil)
        #expect(plan.clusterIPMasquerade == .outside(Self.podCIDR))
    }

    @Test func masqueradeFollowsTheOptionsPerFamily() throws {
        let entry = ServicePortEntry(name: Self.name, port: 80, clusterIPs: [IPAddress("10.96.0.10")!, IPAddress("fd00::10")!],
                                     allEndpoints: [Self.remoteReady, Self.endpoint("fd00:244::5")])
        let both = entry.decided(options: Self.options)
        #expect(both.plans.map(\.clusterIPMasquerade) == [.outside(Self.podCIDR), .outside(IPCIDR("fd00:244::/32")!)])
        let v4Only = entry.decided(options: ProxyOptions(clusterCIDRs: [Self.podCIDR]))
        #expect(v4Only.plans.map(\.clusterIPMasquerade) == [.outside(Self.podCIDR), .none])
        let all = entry.decided(options: ProxyOptions(clusterCIDRs: [Self.podCIDR], masqueradeAll: true))
        #expect(all.plans.map(\.clusterIPMasquerade) == [.all, .all])
        // Each family's plan has only its own addresses and endpoints.
        #expect(both.plans.map(\.family) == [.ipv4, .ipv6])
        #expect(both.plan(for: .ipv6)?.clusterIPs == [IPAddress("fd00::10")!])
        #expect(both.plan(for: .ipv6)?.clusterPool?.map(\.address) == [IPAddress("fd00:244::5")!])
    }

    @Test func dualStackFamiliesDecideApart() throws {
        // IPv4 has endpoints, IPv6 none: IPv4 forwards, IPv6 rejects.
        let entry = ServicePortEntry(name: Self.name, port: 80, clusterIPs: [IPAddress("10.96.0.10")!, IPAddress("fd00::10")!],
                                     allEndpoints: [Self.remoteReady]).decided(options: Self.options)
        #expect(entry.plan(for: .ipv4)?.clusterIPTraffic == .forward(.cluster))
        #expect(entry.plan(for: .ipv6)?.clusterIPTraffic == .reject)
        #expect(entry.hasEndpoints)
    }

    @Test func firewallForLoadBalancerSourceRanges() throws {
        func plan(ranges: [String], endpoints: [ProxyEndpoint]) -> ServicePortPlan? {
            ServicePortEntry(name: Self.name, port: 80, clusterIPs: [IPAddress("10.96.0.10")!],
                             loadBalancerIPs: [IPAddress("203.0.113.7")!],
                             loadBalancerSourceRanges: ranges.map { IPCIDR($0)! }, allEndpoints: endpoints)
                .decided(options: Self.options).plan(for: .ipv4)
        }
        let outside = try #require(plan(ranges: ["198.51.100.0/24"], endpoints: [Self.remoteReady]))
        #expect(outside.firewall == LoadBalancerFirewall(allowedSources: [IPCIDR("198.51.100.0/24")!]))
        #expect(outside.externalStage == ExternalStage(masqueradeAll: true))
        // A range holding the node's IP lets the node reach its load balancer: the LB IP as source too.
        let withNode = try #require(plan(ranges: ["192.168.0.0/24"], endpoints: [Self.remoteReady]))
        #expect(withNode.firewall?.allowedSources == [IPCIDR("192.168.0.0/24")!, IPCIDR("203.0.113.7/32")!])
        // No ranges, or no endpoints (rejected before any firewall): no firewall stage.
        #expect(try #require(plan(ranges: [], endpoints: [Self.remoteReady])).firewall == nil)
        let empty = try #require(plan(ranges: ["198.51.100.0/24"], endpoints: []))
        #expect(empty.firewall == nil && empty.externalStage == nil && empty.externalTraffic == .reject)
    }

    @Test func affinityAndHealthCheckPortCarriedThrough() throws {
        let entry = ServicePortEntry(name: Self.name, port: 80, clusterIPs: [IPAddress("10.96.0.10")!], nodePort: 30080,
                                     affinityTimeout: 600, externalTrafficPolicyLocal: true, healthCheckNodePort: 32000,
                                     allEndpoints: [Self.localReady]).decided(options: Self.options)
        let plan = try #require(entry.plan(for: .ipv4))
        #expect(plan.affinityTimeout == 600 && plan.healthCheckNodePort == 32000 && plan.nodePort == 30080)
        #expect(entry.localReadyEndpointCount == 1)
    }
}

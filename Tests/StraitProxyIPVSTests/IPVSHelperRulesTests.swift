import StraitModel
import StraitNFT
import StraitProxy
import StraitProxyIPVS
import Testing

/// The helper table's rules, rootless: only what the plans say.
struct IPVSHelperRulesTests {
    static let web = ServicePortName(namespace: "default", name: "web", port: "", protocol: .tcp)
    static let node = IPAddress("192.168.100.1")!
    static let endpoint = ProxyEndpoint(address: IPAddress("10.244.1.2")!, port: 8080)

    private func chains(_ rules: IPVSHelperRules) -> [String] { rules.rules.map(\.chain) }

    @Test("a forwarded cluster IP without masquerade needs only its hairpin element")
    func plainClusterIP() {
        let plan = ServicePortPlan(name: Self.web, family: .ipv4, port: 80, clusterIPs: [IPAddress("10.96.0.10")!],
                                   clusterPool: [Self.endpoint], clusterIPTraffic: .forward(.cluster))
        let rules = IPVSHelperRules(family: .ipv4, plans: [plan], nodeAddresses: [Self.node])
        #expect(rules.table == Table(.ip, "strait-ipvs"))
        // The mark's masquerade and the hairpin set's masquerade: the same two rules for any number of endpoints.
        #expect(chains(rules) == ["postrouting", "postrouting"])
        #expect(rules.hairpin == [Element(["10.244.1.2", "10.244.1.2", .proto(.tcp), .port(8080)])])
    }

    @Test("an endpoint of two Services is one hairpin element; a changed endpoint changes elements, not rules")
    func hairpinElements() {
        func plan(_ name: String, _ endpoints: [ProxyEndpoint]) -> ServicePortPlan {
            ServicePortPlan(name: ServicePortName(namespace: "default", name: name, port: "", protocol: .tcp),
                            family: .ipv4, port: 80, clusterIPs: [IPAddress("10.96.0.10")!], clusterPool: endpoints,
                            clusterIPTraffic: .forward(.cluster))
        }
        let other = ProxyEndpoint(address: IPAddress("10.244.1.3")!, port: 8080)
        let shared = IPVSHelperRules(family: .ipv4, plans: [plan("a", [Self.endpoint]), plan("b", [Self.endpoint])],
                                     nodeAddresses: [])
        #expect(shared.hairpin.count == 1)
        let before = IPVSHelperRules.Port(family: .ipv4, plan: plan("a", [Self.endpoint]), nodeAddresses: [])
        let after = IPVSHelperRules.Port(family: .ipv4, plan: plan("a", [other]), nodeAddresses: [])
        #expect(before.marks == after.marks && before.guards == after.guards)
        #expect(before.hairpin != after.hairpin)
    }

    @Test("only endpoints that may be on this node get a hairpin element: local ones and those of no named node")
    func hairpinFollowsTheNode() {
        let local = ProxyEndpoint(address: IPAddress("10.244.1.2")!, port: 8080, isLocal: true, nodeName: "node")
        let remote = ProxyEndpoint(address: IPAddress("10.244.2.2")!, port: 8080, nodeName: "other")
        let unnamed = ProxyEndpoint(address: IPAddress("10.244.3.2")!, port: 8080)
        let plan = ServicePortPlan(name: Self.web, family: .ipv4, port: 80, clusterIPs: [IPAddress("10.96.0.10")!],
                                   clusterPool: [local, remote, unnamed], clusterIPTraffic: .forward(.cluster))
        let rules = IPVSHelperRules(family: .ipv4, plans: [plan], nodeAddresses: [Self.node])
        #expect(rules.hairpin == [Element(["10.244.1.2", "10.244.1.2", .proto(.tcp), .port(8080)]),
                                  Element(["10.244.3.2", "10.244.3.2", .proto(.tcp), .port(8080)])])
    }

    @Test("cluster IP from outside the pod network and a Cluster-policy node port are marked in prerouting and output")
    func masqueradeMarks() {
        let plan = ServicePortPlan(name: Self.web, family: .ipv4, port: 80, clusterIPs: [IPAddress("10.96.0.10")!],
                                   nodePort: 30080, clusterPool: [Self.endpoint], clusterIPTraffic: .forward(.cluster),
                                   clusterIPMasquerade: .outside(IPCIDR("10.244.0.0/16")!),
                                   externalTraffic: .forward(.cluster), externalStage: ExternalStage(masqueradeAll: true))
        let rules = IPVSHelperRules(family: .ipv4, plans: [plan], nodeAddresses: [Self.node, IPAddress("fd00::1")!])
        // Two marks (cluster IP, the one IPv4 node address) in two chains, then masquerade and hairpin.
        #expect(chains(rules) == ["prerouting", "output", "prerouting", "output", "postrouting", "postrouting"])
    }

    @Test("reject and drop fates and a load-balancer firewall guard input and output")
    func fatesAndFirewall() {
        let rejected = ServicePortPlan(name: Self.web, family: .ipv6, port: 80, clusterIPs: [IPAddress("fd00:96::10")!],
                                       clusterIPTraffic: .reject)
        let firewalled = ServicePortPlan(
            name: ServicePortName(namespace: "default", name: "lb", port: "", protocol: .tcp), family: .ipv6, port: 80,
            clusterIPs: [IPAddress("fd00:96::11")!], loadBalancerIPs: [IPAddress("fd00:203::20")!],
            clusterIPTraffic: .drop, externalTraffic: .drop, externalStage: ExternalStage(masqueradeAll: false),
            firewall: LoadBalancerFirewall(allowedSources: [IPCIDR("fd00:100::2/128")!]))
        let rules = IPVSHelperRules(family: .ipv6, plans: [rejected, firewalled], nodeAddresses: [])
        #expect(rules.table == Table(.ip6, "strait-ipvs"))
        // Fates: reject (cluster IP), drop (cluster IP), drop (LB IP); firewall: accept the range, drop the rest;
        // each in output and input; then the masquerade rule.
        #expect(chains(rules)
                == Array(repeating: ["output", "input"], count: 5).flatMap { $0 } + ["postrouting", "postrouting"])
        #expect(rules.rules.first?.expressions.contains(.reject(.icmpv6(code: 4))) == true)
    }
}

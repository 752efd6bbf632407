import StraitModel
import StraitProxy
import StraitProxyIPTables
import StraitTestSupport
import Testing

/// Real packets through rules that `IPTablesBackend` programs in a node namespace, driven directly
/// with hand-built `ServiceTable`s (see `ProxyTopology`). Tests never assert timings: a refused
/// connection is told apart from a dropped one by the error the client gets.
@Suite(.serialized) struct IPTablesEndToEndTests {
    static let web = ServicePortName(namespace: "default", name: "web", port: "http", protocol: .tcp)
    static let dns = ServicePortName(namespace: "default", name: "web", port: "dns", protocol: .udp)
    static let clusterIP = IPAddress("10.96.0.10")!
    static let clusterIP6 = IPAddress("fd00:96::10")!

    /// A Service port with these endpoints, its plans decided as the proxy on the topology's node
    /// decides them (`ProxyTopology.options()`); `configure` sets the Service's facts first.
    static func entry(_ endpoints: [ProxyEndpoint], name: ServicePortName = web, port: UInt16 = 80,
                      clusterIPs: [IPAddress] = [clusterIP], options: ProxyOptions = ProxyTopology.options(),
                      configure: (inout ServicePortEntry) -> Void = { _ in }) -> ServicePortEntry {
        var entry = ServicePortEntry(name: name, port: port, clusterIPs: clusterIPs, allEndpoints: endpoints)
        configure(&entry)
        return entry.decided(options: options)
    }

    @Test(arguments: IPTablesFlavor.allCases)
    func clusterIPOverTCPAndUDPReachesEveryEndpoint(flavor: IPTablesFlavor) async throws {
        try await ProxyTopology.with(endpoints: 3) { net in
            let endpoints = (0..<3).map { net.endpoint($0) }
            let backend = net.backend(flavor: flavor)
            try await backend.sync(from: nil, to: ServiceTable([Self.entry(endpoints), Self.entry(endpoints, name: Self.dns, port: 53)]))

            let tcp = try net.probe("tcp", "10.96.0.10", 80, count: 40)
            #expect(ProxyTopology.names(tcp) == ["ep0", "ep1", "ep2"], "\(tcp)")
            let udp = try net.probe("udp", "10.96.0.10", 53, count: 40)
            #expect(ProxyTopology.names(udp) == ["ep0", "ep1", "ep2"], "\(udp)")
            // The client is outside the cluster CIDR: masqueraded to the node's address on the endpoint's link.
            for answer in tcp + udp {
                let parts = answer.split(separator: " ")
                #expect(parts.count == 2 && parts[1].hasPrefix("10.244.") && parts[1].hasSuffix(".1"), "\(answer)")
            }
            let saved = try net.saved(flavor: flavor)
            #expect(saved.contains("KUBE-SVC-") && saved.contains("--random-fully"))
        }
    }

    @Test func nodePortExternalIPsAndLoadBalancerSourceRanges() async throws {
        try await ProxyTopology.with(endpoints: 2) { net in
            let endpoints = [net.endpoint(0), net.endpoint(1)]
            let entry = Self.entry(endpoints) {
                $0.nodePort = 30080
                $0.externalIPs = [IPAddress("203.0.113.10")!]
                $0.loadBalancerIPs = [IPAddress("203.0.113.20")!]
                $0.loadBalancerSourceRanges = [IPCIDR("192.168.100.2/32")!]
            }
            // The load-balancer address is also local on the node (as many load balancers arrange): traffic the
            // firewall let through would meet no listener and be refused, so a timeout is the firewall's DROP.
            try net.node.run(["ip", "addr", "add", "203.0.113.20/32", "dev", "lo"])
            let backend = net.backend()
            try await backend.sync(from: nil, to: ServiceTable([entry]))

            let nodePort = try net.probe("tcp", ProxyTopology.nodeIP, 30080, count: 20)
            #expect(ProxyTopology.names(nodePort) == ["ep0", "ep1"], "\(nodePort)")
            let external = try net.probe("tcp", "203.0.113.10", 80, count: 20)
            #expect(ProxyTopology.names(external) == ["ep0", "ep1"], "\(external)")
            let allowed = try net.probe("tcp", "203.0.113.20", 80, count: 20)
            #expect(ProxyTopology.names(allowed) == ["ep0", "ep1"], "\(allowed)")

            // Another source: the load-balancer IP drops it; NodePorts are not filtered (as kube-proxy).
            let denied = try net.probe("tcp", "203.0.113.20", 80, source: ProxyTopology.otherClientIP, timeout: 1)
            #expect(denied == ["ERR timeout"])
            #expect(ProxyTopology.names(try net.probe("tcp", ProxyTopology.nodeIP, 30080, source: ProxyTopology.otherClientIP)).count == 1)
        }
    }

    @Test func nodePortAddressesLimitWhereNodePortsAnswer() async throws {
        try await ProxyTopology.with(endpoints: 1) { net in
            try net.node.run(["ip", "addr", "add", "192.168.100.9/24", "dev", "client0"])
            let backend = net.backend(options: ProxyTopology.options(nodePortAddresses: [IPCIDR("192.168.100.9/32")!]))
            try await backend.sync(from: nil, to: ServiceTable([Self.entry([net.endpoint(0)]) { $0.nodePort = 30080 }]))
            #expect(try net.probe("tcp", "192.168.100.9", 30080) == ["ep0 10.244.1.1"])
            // The node's other address has no NodePort: nothing listens there, so the node itself refuses.
            #expect(try net.probe("tcp", ProxyTopology.nodeIP, 30080) == ["ERR refused"])
        }
    }

    @Test func noEndpointsIsRefusedAtOnce() async throws {
        try await ProxyTopology.with(endpoints: 1) { net in
            let table = ServiceTable([Self.entry([]) { $0.nodePort = 30080 }, Self.entry([], name: Self.dns, port: 53)])
            try await net.backend().sync(from: nil, to: table)
            #expect(try net.probe("tcp", "10.96.0.10", 80, timeout: 5) == ["ERR refused"])
            #expect(try net.probe("udp", "10.96.0.10", 53, timeout: 5) == ["ERR refused"])
            #expect(try net.probe("tcp", ProxyTopology.nodeIP, 30080, timeout: 5) == ["ERR refused"])
        }
    }

    /// With no ready endpoint the selection falls back to serving-and-terminating ones.
    @Test func terminatingOnlyEndpointsStillServe() async throws {
        try await ProxyTopology.with(endpoints: 2) { net in
            let terminating = [net.endpoint(0, ready: false, terminating: true), net.endpoint(1, ready: false, terminating: true)]
            try await net.backend().sync(from: nil, to: ServiceTable([Self.entry(terminating)]))
            #expect(ProxyTopology.names(try net.probe("tcp", "10.96.0.10", 80, count: 20)) == ["ep0", "ep1"])
        }
    }

    @Test func externalTrafficPolicyLocalKeepsClientAddressAndDropsWithoutLocalEndpoints() async throws {
        try await ProxyTopology.with(endpoints: 2) { net in
            let local = net.endpoint(0, local: true), remote = net.endpoint(1)
            let backend = net.backend()
            func entry(_ endpoints: [ProxyEndpoint]) -> ServicePortEntry {
                Self.entry(endpoints) {
                    $0.nodePort = 30080
                    $0.externalTrafficPolicyLocal = true
                }
            }
            let withLocal = entry([local, remote])
            try await backend.sync(from: nil, to: ServiceTable([withLocal]))
            let answers = try net.probe("tcp", ProxyTopology.nodeIP, 30080, count: 10)
            #expect(Set(answers) == ["ep0 \(ProxyTopology.clientIP)"], "\(answers)")

            // The local endpoint moved to another node: none left here.
            let noLocal = entry([net.endpoint(0), remote])
            let old = ServiceTable([withLocal])
            try await backend.sync(from: old, to: ServiceTable([noLocal]))
            #expect(try net.probe("tcp", ProxyTopology.nodeIP, 30080, timeout: 1) == ["ERR timeout"])
            // ClusterIP traffic still reaches every endpoint.
            #expect(ProxyTopology.names(try net.probe("tcp", "10.96.0.10", 80, count: 20)) == ["ep0", "ep1"])
        }
    }

    @Test func internalTrafficPolicyLocal() async throws {
        try await ProxyTopology.with(endpoints: 2) { net in
            let local = net.endpoint(0, local: true), remote = net.endpoint(1)
            let backend = net.backend()
            let entry = Self.entry([local, remote]) { $0.internalTrafficPolicyLocal = true }
            try await backend.sync(from: nil, to: ServiceTable([entry]))
            #expect(ProxyTopology.names(try net.probe("tcp", "10.96.0.10", 80, count: 10)) == ["ep0"])

            let none = Self.entry([net.endpoint(0), remote]) { $0.internalTrafficPolicyLocal = true }
            try await backend.sync(from: ServiceTable([entry]), to: ServiceTable([none]))
            #expect(try net.probe("tcp", "10.96.0.10", 80, timeout: 1) == ["ERR timeout"])
        }
    }

    @Test func sessionAffinitySticksAndExpires() async throws {
        try await ProxyTopology.with(endpoints: 4) { net in
            let entry = Self.entry((0..<4).map { net.endpoint($0) }) { $0.affinityTimeout = 2 }
            try await net.backend().sync(from: nil, to: ServiceTable([entry]))
            let first = ProxyTopology.names(try net.probe("tcp", "10.96.0.10", 80, count: 15))
            #expect(first.count == 1)
            // After the timeout the client may land anywhere: wait it out until it lands elsewhere
            // (each round picks afresh among 4, so 8 rounds all on the same one is a 1-in-16,384 chance).
            var moved = false
            for _ in 0..<8 where !moved {
                try await Task.sleep(for: .milliseconds(2600))
                let round = ProxyTopology.names(try net.probe("tcp", "10.96.0.10", 80, count: 3))
                #expect(round.count == 1)
                moved = round != first
            }
            #expect(moved)
        }
    }

    @Test func deletedServiceStopsAnsweringAndPartialSyncsTouchOnlyChangedServices() async throws {
        try await ProxyTopology.with(endpoints: 2) { net in
            let backend = net.backend()
            let other = ServicePortName(namespace: "default", name: "other", port: "", protocol: .tcp)
            let otherEntry = Self.entry([net.endpoint(1)], name: other, port: 81, clusterIPs: [IPAddress("10.96.0.11")!])
            let first = ServiceTable([Self.entry([net.endpoint(0)]), otherEntry])
            try await backend.sync(from: nil, to: first)
            #expect(try net.probe("tcp", "10.96.0.10", 80) == ["ep0 10.244.1.1"])

            // An endpoint change rewrites only that service's chains, not the dispatch chains.
            let second = ServiceTable([Self.entry([net.endpoint(1)]), otherEntry])
            try await backend.sync(from: first, to: second)
            let summary = try #require(await backend.lastSync)
            #expect(!summary.full && summary.rewrittenPorts == 1 && !summary.rewroteDispatch && summary.deletedChains == 1)
            #expect(try net.probe("tcp", "10.96.0.10", 80) == ["ep1 10.244.2.1"])
            let oldChain = IPTablesChainName.endpoint(Self.web, net.endpoint(0))
            #expect(!(try net.saved()).contains(oldChain))

            let third = ServiceTable([otherEntry])
            try await backend.sync(from: second, to: third)
            #expect(try net.probe("tcp", "10.96.0.10", 80, timeout: 1).first?.hasPrefix("ERR") == true)
            #expect(!(try net.saved()).contains(IPTablesChainName.cluster(Self.web)))
            #expect(try net.probe("tcp", "10.96.0.11", 81) == ["ep1 10.244.2.1"])
        }
    }

    @Test func udpFlowMovesToTheNewEndpointOnceConntrackIsCleaned() async throws {
        try await ProxyTopology.with(endpoints: 2) { net in
            let backend = net.backend()
            let before = ServiceTable([Self.entry([net.endpoint(0)], name: Self.dns, port: 53)])
            try await backend.sync(from: nil, to: before)
            #expect(try net.probe("udp", "10.96.0.10", 53, sourcePort: 40053) == ["ep0 10.244.1.1"])

            let after = ServiceTable([Self.entry([net.endpoint(1)], name: Self.dns, port: 53)])
            try await backend.sync(from: before, to: after)
            // The flow's conntrack entry still points at the old endpoint…
            #expect(try net.probe("udp", "10.96.0.10", 53, sourcePort: 40053) == ["ep0 10.244.1.1"])
            // …until the entries whose reply comes from a removed endpoint are deleted, as the core does
            // after a sync (kube-proxy's conntrack cleanup; equivalent of `conntrack -D … --reply-src`).
            _ = try net.node.output(["conntrack", "-D", "-p", "udp", "--orig-dst", "10.96.0.10", "--orig-port-dst", "53",
                                     "--reply-src", ProxyTopology.endpointIP(0)])
            #expect(try net.probe("udp", "10.96.0.10", 53, sourcePort: 40053) == ["ep1 10.244.2.1"])
        }
    }

    @Test(arguments: IPTablesFlavor.allCases)
    func cleanupRemovesEveryStraitRuleAndKeepsForeignOnes(flavor: IPTablesFlavor) async throws {
        try await ProxyTopology.with(endpoints: 1) { net in
            let tool = flavor == .nft ? "iptables-nft" : "iptables-legacy"
            try net.node.run([tool, "-t", "nat", "-N", "FOREIGN"])
            try net.node.run([tool, "-t", "nat", "-A", "PREROUTING", "-s", "198.51.100.1", "-j", "FOREIGN"])
            try net.node.run([tool, "-t", "filter", "-A", "INPUT", "-s", "198.51.100.1", "-j", "ACCEPT"])
            let backend = net.backend(flavor: flavor)
            let entry = Self.entry([net.endpoint(0)]) {
                $0.nodePort = 30080
                $0.affinityTimeout = 60
                $0.loadBalancerIPs = [IPAddress("203.0.113.20")!]
                $0.loadBalancerSourceRanges = [IPCIDR("192.168.100.0/24")!]
            }
            try await backend.sync(from: nil, to: ServiceTable([entry, Self.entry([], name: Self.dns, port: 53)]))
            // A second backend (a restarted proxy) finds the rules and does not duplicate the jumps.
            try await net.backend(flavor: flavor).sync(from: nil, to: ServiceTable([entry]))
            let programmed = try net.saved(flavor: flavor)
            #expect(programmed.components(separatedBy: "-j KUBE-SERVICES").count - 1 == 4, "\(programmed)")
            #expect(try net.probe("tcp", "10.96.0.10", 80) == ["ep0 10.244.1.1"])

            try await backend.cleanup()
            let saved = try net.saved(flavor: flavor)
            #expect(!saved.contains("KUBE-"), "\(saved)")
            #expect(saved.contains("-A PREROUTING -s 198.51.100.1/32 -j FOREIGN"))
            #expect(saved.contains("-A INPUT -s 198.51.100.1/32 -j ACCEPT"))
        }
    }

    // MARK: IPv6 and dual stack (ip6tables beside iptables)

    @Test func ipv6ClusterIPNodePortAndReject() async throws {
        try await ProxyTopology.with(endpoints: 2) { net in
            let endpoints = [net.endpoint(0, family: .ipv6), net.endpoint(1, family: .ipv6)]
            let backend = net.backend(family: .ipv6)
            let table = ServiceTable([
                Self.entry(endpoints, clusterIPs: [Self.clusterIP6]) { $0.nodePort = 30080 },
                Self.entry(endpoints, name: Self.dns, port: 53, clusterIPs: [Self.clusterIP6]),
                Self.entry([], name: ServicePortName(namespace: "default", name: "empty", port: "", protocol: .tcp),
                           port: 81, clusterIPs: [Self.clusterIP6]),
            ])
            try await backend.sync(from: nil, to: table)

            let tcp = try net.probe("tcp", "fd00:96::10", 80, count: 30)
            #expect(ProxyTopology.names(tcp) == ["ep0", "ep1"], "\(tcp)")
            // From outside the IPv6 cluster CIDR: masqueraded to the node's address on the endpoint's link.
            #expect(tcp.allSatisfy { $0.hasSuffix("::1") }, "\(tcp)")
            let udp = try net.probe("udp", "fd00:96::10", 53, count: 30)
            #expect(ProxyTopology.names(udp) == ["ep0", "ep1"], "\(udp)")
            let nodePort = try net.probe("tcp", ProxyTopology.nodeIP6, 30080, count: 20)
            #expect(ProxyTopology.names(nodePort) == ["ep0", "ep1"], "\(nodePort)")
            #expect(try net.probe("tcp", "fd00:96::10", 81, timeout: 5) == ["ERR refused"])
            // The IPv4 tables hold nothing of an IPv6-only Service.
            #expect(!(try net.saved()).contains("KUBE-SVC-"))
            #expect(try net.saved(family: .ipv6).contains("KUBE-SVC-"))
        }
    }

    @Test func ipv6SessionAffinitySticks() async throws {
        try await ProxyTopology.with(endpoints: 3) { net in
            let endpoints = (0..<3).map { net.endpoint($0, family: .ipv6) }
            let entry = Self.entry(endpoints, clusterIPs: [Self.clusterIP6]) { $0.affinityTimeout = 600 }
            try await net.backend(family: .ipv6).sync(from: nil, to: ServiceTable([entry]))
            let answers = ProxyTopology.names(try net.probe("tcp", "fd00:96::10", 80, count: 20))
            #expect(answers.count == 1, "\(answers)")
        }
    }

    /// One Service with a cluster IP of each family, programmed by one backend per family behind
    /// one sync (kube-proxy's metaproxier): reached on both, each family to its own endpoints.
    @Test func dualStackServiceAnswersOnBothFamilies() async throws {
        try await ProxyTopology.with(endpoints: 2) { net in
            let backend = DualStackBackend([net.backend(family: .ipv4), net.backend(family: .ipv6)])
            let endpoints = [net.endpoint(0), net.endpoint(1, family: .ipv6)]
            let entry = Self.entry(endpoints, clusterIPs: [Self.clusterIP, Self.clusterIP6]) { $0.nodePort = 30080 }
            #expect(entry.plans.map(\.family) == [.ipv4, .ipv6])
            try await backend.sync(from: nil, to: ServiceTable([entry]))

            #expect(ProxyTopology.names(try net.probe("tcp", "10.96.0.10", 80, count: 10)) == ["ep0"])
            #expect(ProxyTopology.names(try net.probe("tcp", "fd00:96::10", 80, count: 10)) == ["ep1"])
            #expect(ProxyTopology.names(try net.probe("tcp", ProxyTopology.nodeIP6, 30080, count: 5)) == ["ep1"])

            // The IPv6 endpoint goes: IPv6 traffic is rejected, IPv4 traffic still served.
            let v4Only = Self.entry([net.endpoint(0)], clusterIPs: [Self.clusterIP, Self.clusterIP6]) { $0.nodePort = 30080 }
            try await backend.sync(from: ServiceTable([entry]), to: ServiceTable([v4Only]))
            #expect(try net.probe("tcp", "fd00:96::10", 80, timeout: 5) == ["ERR refused"])
            #expect(ProxyTopology.names(try net.probe("tcp", "10.96.0.10", 80, count: 5)) == ["ep0"])

            try await backend.cleanup()
            #expect(!(try net.saved()).contains("KUBE-"))
            #expect(!(try net.saved(family: .ipv6)).contains("KUBE-"))
        }
    }
}

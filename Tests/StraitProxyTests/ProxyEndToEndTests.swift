import Foundation
import StraitModel
import StraitNFT
import StraitProxy
import StraitProxyIPTables
import StraitProxyNFTables
import StraitTestSupport
import Testing

/// Real packets through what the iptables and nftables modes program in a node namespace, driven
/// directly with hand-built `ServiceTable`s (see `ProxyTopology`): every test runs in each mode
/// (`ProxyDataplane`), both families where the mode serves them. Tests never assert timings: a
/// refused connection is told apart from a dropped one by the error the client gets.
@Suite(.serialized) struct ProxyEndToEndTests {
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

    @Test(arguments: ProxyDataplane.everyFlavor)
    func clusterIPOverTCPAndUDPReachesEveryEndpoint(mode: ProxyDataplane) async throws {
        try await ProxyTopology.with(endpoints: 3) { net in
            let endpoints = (0..<3).map { net.endpoint($0) }
            let backend = try net.backend(mode)
            try await backend.sync(from: nil, to: ServiceTable([Self.entry(endpoints),
                                                                Self.entry(endpoints, name: Self.dns, port: 53)]))

            let tcp = try net.probe("tcp", "10.96.0.10", 80, count: 40)
            #expect(ProxyTopology.names(tcp) == ["ep0", "ep1", "ep2"], "\(tcp)")
            let udp = try net.probe("udp", "10.96.0.10", 53, count: 40)
            #expect(ProxyTopology.names(udp) == ["ep0", "ep1", "ep2"], "\(udp)")
            // The client is outside the cluster CIDR: masqueraded to the node's address on the endpoint's link.
            for answer in tcp + udp {
                let parts = answer.split(separator: " ")
                #expect(parts.count == 2 && parts[1].hasPrefix("10.244.") && parts[1].hasSuffix(".1"), "\(answer)")
            }
            let listing = try net.programmed(mode)
            #expect(listing.contains(mode.serviceMarker), "\(listing)")
            #expect(listing.contains(mode.clusterChain(Self.web)), "\(listing)")
            if case .iptables = mode { #expect(listing.contains("--random-fully")) }
        }
    }

    @Test(arguments: ProxyDataplane.modes)
    func nodePortExternalIPsAndLoadBalancerSourceRanges(mode: ProxyDataplane) async throws {
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
            try await net.backend(mode).sync(from: nil, to: ServiceTable([entry]))

            let nodePort = try net.probe("tcp", ProxyTopology.nodeIP, 30080, count: 20)
            #expect(ProxyTopology.names(nodePort) == ["ep0", "ep1"], "\(nodePort)")
            let external = try net.probe("tcp", "203.0.113.10", 80, count: 20)
            #expect(ProxyTopology.names(external) == ["ep0", "ep1"], "\(external)")
            let allowed = try net.probe("tcp", "203.0.113.20", 80, count: 20)
            #expect(ProxyTopology.names(allowed) == ["ep0", "ep1"], "\(allowed)")

            // Another source: the load-balancer IP drops it; NodePorts are not filtered (as kube-proxy).
            let denied = try net.probe("tcp", "203.0.113.20", 80, source: ProxyTopology.otherClientIP, timeout: 1)
            #expect(denied == ["ERR timeout"])
            let other = try net.probe("tcp", ProxyTopology.nodeIP, 30080, source: ProxyTopology.otherClientIP)
            #expect(ProxyTopology.names(other).count == 1, "\(other)")
        }
    }

    @Test(arguments: ProxyDataplane.modes)
    func nodePortAddressesLimitWhereNodePortsAnswer(mode: ProxyDataplane) async throws {
        try await ProxyTopology.with(endpoints: 1) { net in
            try net.node.run(["ip", "addr", "add", "192.168.100.9/24", "dev", "client0"])
            let backend = try net.backend(mode, options: ProxyTopology.options(
                nodePortAddresses: [IPCIDR("192.168.100.9/32")!]))
            let entry = Self.entry([net.endpoint(0)]) { $0.nodePort = 30080 }
            try await backend.sync(from: nil, to: ServiceTable([entry]))
            #expect(try net.probe("tcp", "192.168.100.9", 30080) == ["ep0 10.244.1.1"])
            // The node's other address has no NodePort: nothing listens there, so the node itself refuses.
            #expect(try net.probe("tcp", ProxyTopology.nodeIP, 30080) == ["ERR refused"])
        }
    }

    @Test(arguments: ProxyDataplane.modes)
    func noEndpointsIsRefusedAtOnce(mode: ProxyDataplane) async throws {
        try await ProxyTopology.with(endpoints: 1) { net in
            let table = ServiceTable([Self.entry([]) { $0.nodePort = 30080 },
                                      Self.entry([], name: Self.dns, port: 53)])
            try await net.backend(mode).sync(from: nil, to: table)
            #expect(try net.probe("tcp", "10.96.0.10", 80, timeout: 5) == ["ERR refused"])
            #expect(try net.probe("udp", "10.96.0.10", 53, timeout: 5) == ["ERR refused"])
            #expect(try net.probe("tcp", ProxyTopology.nodeIP, 30080, timeout: 5) == ["ERR refused"])
        }
    }

    /// With no ready endpoint the selection falls back to serving-and-terminating ones.
    @Test(arguments: ProxyDataplane.modes)
    func terminatingOnlyEndpointsStillServe(mode: ProxyDataplane) async throws {
        try await ProxyTopology.with(endpoints: 2) { net in
            let terminating = [net.endpoint(0, ready: false, terminating: true),
                               net.endpoint(1, ready: false, terminating: true)]
            try await net.backend(mode).sync(from: nil, to: ServiceTable([Self.entry(terminating)]))
            #expect(ProxyTopology.names(try net.probe("tcp", "10.96.0.10", 80, count: 20)) == ["ep0", "ep1"])
        }
    }

    @Test(arguments: ProxyDataplane.modes)
    func externalTrafficPolicyLocalKeepsClientAddressAndDropsWithoutLocalEndpoints(
        mode: ProxyDataplane
    ) async throws {
        try await ProxyTopology.with(endpoints: 2) { net in
            let local = net.endpoint(0, local: true), remote = net.endpoint(1)
            let backend = try net.backend(mode)
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
            try await backend.sync(from: ServiceTable([withLocal]), to: ServiceTable([noLocal]))
            #expect(try net.probe("tcp", ProxyTopology.nodeIP, 30080, timeout: 1) == ["ERR timeout"])
            // ClusterIP traffic still reaches every endpoint.
            #expect(ProxyTopology.names(try net.probe("tcp", "10.96.0.10", 80, count: 20)) == ["ep0", "ep1"])
        }
    }

    @Test(arguments: ProxyDataplane.modes)
    func internalTrafficPolicyLocal(mode: ProxyDataplane) async throws {
        try await ProxyTopology.with(endpoints: 2) { net in
            let local = net.endpoint(0, local: true), remote = net.endpoint(1)
            let backend = try net.backend(mode)
            let entry = Self.entry([local, remote]) { $0.internalTrafficPolicyLocal = true }
            try await backend.sync(from: nil, to: ServiceTable([entry]))
            #expect(ProxyTopology.names(try net.probe("tcp", "10.96.0.10", 80, count: 10)) == ["ep0"])

            let none = Self.entry([net.endpoint(0), remote]) { $0.internalTrafficPolicyLocal = true }
            try await backend.sync(from: ServiceTable([entry]), to: ServiceTable([none]))
            #expect(try net.probe("tcp", "10.96.0.10", 80, timeout: 1) == ["ERR timeout"])
        }
    }

    /// A pod reaching its own Service and drawn as the endpoint (hairpin) gets its packet back with the
    /// node's address as source: without the masquerade its own address would come back to it, which its
    /// kernel drops as a martian. An endpoint on another node needs no such rule here.
    @Test(arguments: ProxyDataplane.modes)
    func hairpinConnectionToItsOwnServiceIsMasqueraded(mode: ProxyDataplane) async throws {
        try await ProxyTopology.with(endpoints: 2) { net in
            var local = net.endpoint(0, local: true), remote = net.endpoint(1)
            local.nodeName = "node"
            remote.nodeName = "other"
            let backend = try net.backend(mode)
            try await backend.sync(from: nil, to: ServiceTable([Self.entry([local]),
                                                                Self.entry([remote], name: Self.dns, port: 53)]))
            let answers = try net.endpoints[0].run([
                "python3", "\(net.scripts)/probe.py", "tcp", "10.96.0.10", "80", "3", ProxyTopology.endpointIP(0),
                "0", "1.5"]).split(separator: "\n").map(String.init)
            #expect(answers == Array(repeating: "ep0 \(ProxyTopology.nodeSideIP(0))", count: 3), "\(answers)")
            if case .nftables = mode {
                let hairpin = try net.node.run(["nft", "list", "set", "ip", "strait", "hairpin-endpoints"])
                #expect(hairpin.contains("\(ProxyTopology.endpointIP(0)) . \(ProxyTopology.endpointIP(0))"), "\(hairpin)")
                #expect(!hairpin.contains(ProxyTopology.endpointIP(1)), "\(hairpin)")
            }
        }
    }

    @Test(arguments: ProxyDataplane.modes)
    func sessionAffinitySticksAndExpires(mode: ProxyDataplane) async throws {
        try await ProxyTopology.with(endpoints: 4) { net in
            let entry = Self.entry((0..<4).map { net.endpoint($0) }) { $0.affinityTimeout = 2 }
            try await net.backend(mode).sync(from: nil, to: ServiceTable([entry]))
            let first = ProxyTopology.names(try net.probe("tcp", "10.96.0.10", 80, count: 15))
            #expect(first.count == 1, "\(first)")
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

    /// An endpoint change touches only its Service (iptables: that port's chains, not the dispatch;
    /// nftables: map elements only, a data-only commit); a removed Service stops answering and its
    /// chains go.
    @Test(arguments: ProxyDataplane.modes)
    func partialSyncsTouchOnlyChangedServicesAndDeletedServiceStopsAnswering(mode: ProxyDataplane) async throws {
        try await ProxyTopology.with(endpoints: 2) { net in
            let backend = try net.backend(mode)
            let other = ServicePortName(namespace: "default", name: "other", port: "", protocol: .tcp)
            let otherEntry = Self.entry([net.endpoint(1)], name: other, port: 81,
                                        clusterIPs: [IPAddress("10.96.0.11")!])
            let first = ServiceTable([Self.entry([net.endpoint(0)]), otherEntry])
            try await backend.sync(from: nil, to: first)
            #expect(try net.probe("tcp", "10.96.0.10", 80) == ["ep0 10.244.1.1"])

            let second = ServiceTable([Self.entry([net.endpoint(1)]), otherEntry])
            try await backend.sync(from: first, to: second)
            switch mode {
            case .iptables:
                let summary = try #require(await (backend as? IPTablesBackend)?.lastSync)
                #expect(!summary.full && summary.rewrittenPorts == 1 && !summary.rewroteDispatch
                        && summary.deletedChains == 1)
                let oldChain = IPTablesChainName.endpoint(Self.web, net.endpoint(0))
                #expect(!(try net.programmed(mode)).contains(oldChain))
            case .nftables:
                let changes = try #require(await (backend as? NFTablesBackend)?.lastTransaction.changes)
                let dataOnly = changes.allSatisfy {
                    if case .add(.elements) = $0 { true } else if case .delete(.elements) = $0 { true } else { false }
                }
                #expect(dataOnly && !changes.isEmpty, "\(changes)")
            }
            #expect(try net.probe("tcp", "10.96.0.10", 80) == ["ep1 10.244.2.1"])

            try await backend.sync(from: second, to: ServiceTable([otherEntry]))
            #expect(try net.probe("tcp", "10.96.0.10", 80, timeout: 1).first?.hasPrefix("ERR") == true)
            #expect(!(try net.programmed(mode)).contains(mode.clusterChain(Self.web)))
            #expect(try net.probe("tcp", "10.96.0.11", 81) == ["ep1 10.244.2.1"])
        }
    }

    @Test(arguments: ProxyDataplane.modes)
    func udpFlowMovesToTheNewEndpointOnceConntrackIsCleaned(mode: ProxyDataplane) async throws {
        try await ProxyTopology.with(endpoints: 2) { net in
            let backend = try net.backend(mode)
            let before = ServiceTable([Self.entry([net.endpoint(0)], name: Self.dns, port: 53)])
            try await backend.sync(from: nil, to: before)
            #expect(try net.probe("udp", "10.96.0.10", 53, sourcePort: 40053) == ["ep0 10.244.1.1"])

            let after = ServiceTable([Self.entry([net.endpoint(1)], name: Self.dns, port: 53)])
            try await backend.sync(from: before, to: after)
            // The flow's conntrack entry still points at the old endpoint…
            #expect(try net.probe("udp", "10.96.0.10", 53, sourcePort: 40053) == ["ep0 10.244.1.1"])
            // …until the entries whose reply comes from a removed endpoint are deleted, as the core does
            // after a sync (kube-proxy's conntrack cleanup; equivalent of `conntrack -D … --reply-src`).
            _ = try net.node.output(["conntrack", "-D", "-p", "udp", "--orig-dst", "10.96.0.10",
                                     "--orig-port-dst", "53", "--reply-src", ProxyTopology.endpointIP(0)])
            #expect(try net.probe("udp", "10.96.0.10", 53, sourcePort: 40053) == ["ep1 10.244.2.1"])
        }
    }

    /// Strait's rules go; a foreign table's (iptables: chains and rules in the built-in chains;
    /// nftables: another table hooked at the same points) stay. A restarted proxy (a second
    /// backend) finds its rules and does not duplicate its hooks.
    @Test(arguments: ProxyDataplane.everyFlavor)
    func cleanupRemovesEveryStraitRuleAndKeepsForeignOnes(mode: ProxyDataplane) async throws {
        try await ProxyTopology.with(endpoints: 1) { net in
            switch mode {
            case .iptables(let flavor):
                let tool = flavor == .nft ? "iptables-nft" : "iptables-legacy"
                try net.node.run([tool, "-t", "nat", "-N", "FOREIGN"])
                try net.node.run([tool, "-t", "nat", "-A", "PREROUTING", "-s", "198.51.100.1", "-j", "FOREIGN"])
                try net.node.run([tool, "-t", "filter", "-A", "INPUT", "-s", "198.51.100.1", "-j", "ACCEPT"])
            case .nftables:
                try net.node.run(["nft", "add table ip foreign; add chain ip foreign pre "
                                  + "{ type nat hook prerouting priority dstnat; }; "
                                  + "add rule ip foreign pre ip saddr 198.51.100.1 counter"])
            }
            let backend = try net.backend(mode)
            let entry = Self.entry([net.endpoint(0)]) {
                $0.nodePort = 30080
                $0.affinityTimeout = 60
                $0.loadBalancerIPs = [IPAddress("203.0.113.20")!]
                $0.loadBalancerSourceRanges = [IPCIDR("192.168.100.0/24")!]
            }
            try await backend.sync(from: nil, to: ServiceTable([entry, Self.entry([], name: Self.dns, port: 53)]))
            if case .nftables = mode { #expect(try net.programmed(mode).contains("udp . 53")) }
            try await net.backend(mode).sync(from: nil, to: ServiceTable([entry]))
            let programmed = try net.programmed(mode)
            switch mode {
            case .iptables:
                #expect(programmed.components(separatedBy: "-j KUBE-SERVICES").count - 1 == 4, "\(programmed)")
            case .nftables:
                #expect(programmed.components(separatedBy: "jump services").count - 1 == 2, "\(programmed)")
                #expect(!programmed.contains("udp . 53"), "\(programmed)")
            }
            #expect(try net.probe("tcp", "10.96.0.10", 80) == ["ep0 10.244.1.1"])

            try await backend.cleanup()
            let left = try net.programmed(mode)
            #expect(try !net.holdsStraitRules(mode), "\(left)")
            switch mode {
            case .iptables:
                let saved = try net.programmed(mode)
                #expect(saved.contains("-A PREROUTING -s 198.51.100.1/32 -j FOREIGN"))
                #expect(saved.contains("-A INPUT -s 198.51.100.1/32 -j ACCEPT"))
            case .nftables:
                #expect(try net.node.run(["nft", "list", "table", "ip", "foreign"]).contains("198.51.100.1"))
            }
        }
    }

    /// Rules deleted by hand stop the Service; the next full sync puts them back (iptables: the
    /// restore rewrites the tables; nftables: the table is read back and what differs repaired).
    @Test(arguments: ProxyDataplane.modes)
    func fullSyncRepairsWhatWasDeletedByHand(mode: ProxyDataplane) async throws {
        try await ProxyTopology.with(endpoints: 1) { net in
            let backend = try net.backend(mode)
            let table = ServiceTable([Self.entry([net.endpoint(0)]),
                                      Self.entry([net.endpoint(0)], name: Self.dns, port: 53)])
            try await backend.sync(from: nil, to: table)
            let before = try net.programmed(mode)
            switch mode {
            case .iptables(let flavor):
                try net.node.run([flavor.binary("iptables", family: .ipv4), "-t", "nat", "-F", "KUBE-SERVICES"])
                #expect(try net.probe("tcp", "10.96.0.10", 80, timeout: 1).first?.hasPrefix("ERR") == true)
                try await backend.sync(from: nil, to: table)
                #expect(try net.programmed(mode).contains("-A KUBE-SERVICES -d 10.96.0.10/32"))
            case .nftables:
                let beforeContents = try Self.nftContents(net)
                // A second full sync of the same state finds nothing to change.
                try await backend.sync(from: nil, to: table)
                let second = try #require(await (backend as? NFTablesBackend)?.lastTransaction)
                #expect(second.isEmpty, "\(second.changes)")

                // Both ports have one endpoint: they share the shape chain `pool-size-1`, which can go
                // once no element goes to it.
                #expect(before.contains("chain pool-size-1 {"), "\(before)")
                try net.node.run(["nft", "delete", "element", "ip", "strait", "service-ips",
                                  "{ 10.96.0.10 . tcp . 80 }"])
                try net.node.run(["nft", "delete", "element", "ip", "strait", "service-ips",
                                  "{ 10.96.0.10 . udp . 53 }"])
                try net.node.run(["nft", "delete", "element", "ip", "strait", "cluster-endpoints",
                                  "{ 10.96.0.10 . udp . 53 . 0 }"])
                try net.node.run(["nft", "delete", "chain", "ip", "strait", "pool-size-1"])
                #expect(try net.probe("tcp", "10.96.0.10", 80, timeout: 1).first?.hasPrefix("ERR") == true)
                try await backend.sync(from: nil, to: table)
                #expect(try Self.nftContents(net) == beforeContents)
            }
            #expect(try net.probe("tcp", "10.96.0.10", 80) == ["ep0 10.244.1.1"])
            #expect(try net.probe("udp", "10.96.0.10", 53) == ["ep0 10.244.1.1"])
        }
    }

    /// The node's nftables table as values, without what only the kernel decides (handles, hash orders).
    static func nftContents(_ net: ProxyTopology) throws -> [String] {
        let contents = try #require(try NFTConnection(namespace: net.node.name).list(Table(.ip, "strait")))
        var lines = contents.chains.map { "chain \($0)" }.sorted()
        for (set, elements) in contents.elements.sorted(by: { $0.key < $1.key }) {
            lines += elements.map { "\(set): \($0)" }.sorted()
        }
        for chain in contents.chains.sorted(by: { $0.name < $1.name }) {
            lines += contents.rules(in: chain.name).map { "\(chain.name): \($0.expressions)" }
        }
        return lines
    }

    /// The built `strait proxy --proxy-mode nftables` fed through the store: packets, `/proxyMode`,
    /// an endpoint change, then `--cleanup` removes both families' tables. (The iptables mode's
    /// built proxy: `ProxyCommandEndToEndTests`.)
    @Test func builtProxyInNFTablesMode() async throws {
        try await ProxyTopology.with(endpoints: 2) { net in
            let store = net.scripts + "/store.db", manifestPath = net.scripts + "/web.yaml"
            try ProxyTopology.webManifest.write(toFile: manifestPath, atomically: true, encoding: .utf8)
            let strait = builtProduct("strait")
            let proxy = try Command.start(["ip", "netns", "exec", net.node.name, strait, "proxy", "--store", store,
                                           "--proxy-mode", "nftables", "--hostname-override", "node",
                                           "--cluster-cidr", "10.244.0.0/16", "--conntrack-max-per-core=0",
                                           "--metrics-bind-address", "127.0.0.1:10249",
                                           "--healthz-bind-address", "127.0.0.1:10256"], stdin: "")
            defer { kill(proxy, SIGKILL); Command.waitForExit(proxy) }
            try Command.run([strait, "apply", "-f", manifestPath, "--store", store])
            func answering() throws -> Set<String> {
                ProxyTopology.names(try net.probe("tcp", "10.96.0.10", 80, count: 10, timeout: 0.5))
            }
            #expect(try await Self.eventually { try answering() == ["ep0", "ep1"] })
            let mode = try net.node.run(["curl", "-s", "http://127.0.0.1:10249/proxyMode"])
            #expect(mode == "nftables", "\(mode)")
            #expect(try net.nftTable().contains("chain service-"))

            // The slice loses its second endpoint (the manifest's last three lines).
            let moved = ProxyTopology.webManifest.split(separator: "\n").dropLast(3).joined(separator: "\n")
            try moved.write(toFile: manifestPath, atomically: true, encoding: .utf8)
            try Command.run([strait, "apply", "-f", manifestPath, "--store", store])
            #expect(try await Self.eventually { try answering() == ["ep0"] })

            kill(proxy, SIGTERM)
            Command.waitForExit(proxy)
            try net.node.run([strait, "proxy", "--proxy-mode", "nftables", "--cleanup"])
            #expect(try !net.holdsStraitRules(.nftables))
            #expect(try !net.holdsStraitRules(.nftables, family: .ipv6))
        }
    }

    /// `strait proxy --cleanup` (in its default mode) removes what every mode left: iptables chains of
    /// both families, the nftables tables `strait`, the ipvs mode's helper tables `strait-ipvs` and its
    /// device `kube-ipvs0` (made by hand here: this kernel has no IPVS); a foreign table stays.
    @Test func cleanupRemovesTheLeftoversOfEveryMode() async throws {
        try await ProxyTopology.with(endpoints: 1) { net in
            let entry = Self.entry([net.endpoint(0), net.endpoint(0, family: .ipv6)],
                                   clusterIPs: [Self.clusterIP, Self.clusterIP6]) { $0.nodePort = 30080 }
            for mode in ProxyDataplane.modes {
                try await net.dualStackBackend(mode).sync(from: nil, to: ServiceTable([entry]))
            }
            for family in ["ip", "ip6"] {
                try net.node.run(["nft", "add table \(family) strait-ipvs; add chain \(family) strait-ipvs "
                                  + "prerouting { type nat hook prerouting priority 0; }"])
            }
            try net.node.run(["nft", "add table ip foreign"])
            // This kernel has no dummy devices: a veth pair stands in (deleting one end deletes both).
            try net.node.run(["ip", "link", "add", "kube-ipvs0", "type", "veth", "peer", "name", "kube-ipvs0p"])
            try net.node.run(["ip", "addr", "add", "10.96.0.10/32", "dev", "kube-ipvs0"])
            for mode in ProxyDataplane.modes {
                #expect(try net.holdsStraitRules(mode), "\(mode)")
                #expect(try net.holdsStraitRules(mode, family: .ipv6), "\(mode)")
            }

            let output = try net.node.output([builtProduct("strait"), "proxy", "--cleanup"])
            #expect(output.succeeded, "\(output.stderr)")
            for mode in ProxyDataplane.modes {
                let left = try net.programmed(mode), left6 = try net.programmed(mode, family: .ipv6)
                #expect(try !net.holdsStraitRules(mode), "\(left)")
                #expect(try !net.holdsStraitRules(mode, family: .ipv6), "\(left6)")
            }
            let tables = try net.node.run(["nft", "list", "tables"])
            #expect(!tables.contains("strait"), "\(tables)")
            #expect(tables.contains("table ip foreign"), "\(tables)")
            #expect(try !net.node.output(["ip", "link", "show", "kube-ipvs0"]).succeeded)
            // Nothing left is nothing to do: a second cleanup succeeds too.
            #expect(try net.node.output([builtProduct("strait"), "proxy", "--cleanup"]).succeeded)
        }
    }

    static func eventually(_ check: () throws -> Bool) async throws -> Bool {
        for _ in 0..<100 {
            if try check() { return true }
            try await Task.sleep(for: .milliseconds(100))
        }
        return false
    }

    // MARK: IPv6 and dual stack

    @Test(arguments: ProxyDataplane.modes)
    func ipv6ClusterIPNodePortAffinityAndReject(mode: ProxyDataplane) async throws {
        try await ProxyTopology.with(endpoints: 2) { net in
            let endpoints = [net.endpoint(0, family: .ipv6), net.endpoint(1, family: .ipv6)]
            let backend = try net.backend(mode, family: .ipv6)
            let sticky = ServicePortName(namespace: "default", name: "sticky", port: "", protocol: .tcp)
            let table = ServiceTable([
                Self.entry(endpoints, clusterIPs: [Self.clusterIP6]) { $0.nodePort = 30080 },
                Self.entry(endpoints, name: Self.dns, port: 53, clusterIPs: [Self.clusterIP6]),
                Self.entry(endpoints, name: sticky, port: 82, clusterIPs: [Self.clusterIP6]) {
                    $0.affinityTimeout = 600
                },
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
            #expect(ProxyTopology.names(try net.probe("tcp", "fd00:96::10", 82, count: 20)).count == 1)
            #expect(try net.probe("tcp", "fd00:96::10", 81, timeout: 5) == ["ERR refused"])
            // The IPv4 tables hold nothing of an IPv6-only Service.
            #expect(!(try net.programmed(mode)).contains(mode.serviceMarker))
            #expect(try net.programmed(mode, family: .ipv6).contains(mode.serviceMarker))
        }
    }

    /// One Service with a cluster IP of each family, programmed by one backend per family behind
    /// one sync (kube-proxy's metaproxier): reached on both, each family to its own endpoints.
    @Test(arguments: ProxyDataplane.modes)
    func dualStackServiceAnswersOnBothFamilies(mode: ProxyDataplane) async throws {
        try await ProxyTopology.with(endpoints: 2) { net in
            let backend = try net.dualStackBackend(mode)
            let endpoints = [net.endpoint(0), net.endpoint(1, family: .ipv6)]
            let entry = Self.entry(endpoints, clusterIPs: [Self.clusterIP, Self.clusterIP6]) { $0.nodePort = 30080 }
            #expect(entry.plans.map(\.family) == [.ipv4, .ipv6])
            try await backend.sync(from: nil, to: ServiceTable([entry]))

            #expect(ProxyTopology.names(try net.probe("tcp", "10.96.0.10", 80, count: 10)) == ["ep0"])
            #expect(ProxyTopology.names(try net.probe("tcp", "fd00:96::10", 80, count: 10)) == ["ep1"])
            #expect(ProxyTopology.names(try net.probe("tcp", ProxyTopology.nodeIP6, 30080, count: 5)) == ["ep1"])

            // The IPv6 endpoint goes: IPv6 traffic is rejected, IPv4 traffic still served.
            let v4Only = Self.entry([net.endpoint(0)], clusterIPs: [Self.clusterIP, Self.clusterIP6]) {
                $0.nodePort = 30080
            }
            try await backend.sync(from: ServiceTable([entry]), to: ServiceTable([v4Only]))
            #expect(try net.probe("tcp", "fd00:96::10", 80, timeout: 5) == ["ERR refused"])
            #expect(ProxyTopology.names(try net.probe("tcp", "10.96.0.10", 80, count: 5)) == ["ep0"])

            try await backend.cleanup()
            #expect(try !net.holdsStraitRules(mode))
            #expect(try !net.holdsStraitRules(mode, family: .ipv6))
        }
    }
}

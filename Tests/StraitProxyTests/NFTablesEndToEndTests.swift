import Foundation
import StraitModel
import StraitNFT
import StraitProxy
import StraitProxyNFTables
import StraitTestSupport
import Testing

extension ProxyTopology {
    /// The nftables mode for one family, programming the node namespace over netlink.
    func nftBackend(family: IPFamily = .ipv4,
                    options: ProxyOptions = ProxyTopology.options()) throws -> NFTablesBackend {
        NFTablesBackend(family: family, options: options, kernel: try NFTConnection(namespace: node.name))
    }

    /// `nft list table FAMILY strait` in the node namespace.
    func nftTable(_ family: IPFamily = .ipv4) throws -> String {
        try node.run(["nft", "list", "table", family == .ipv4 ? "ip" : "ip6", "strait"])
    }
}

/// Real packets through the table `NFTablesBackend` programs in a node namespace (the same topology
/// and checks as the iptables mode's suite). Tests never assert timings.
@Suite(.serialized) struct NFTablesEndToEndTests {
    static let web = IPTablesEndToEndTests.web
    static let dns = IPTablesEndToEndTests.dns
    static let clusterIP = IPTablesEndToEndTests.clusterIP
    static let clusterIP6 = IPTablesEndToEndTests.clusterIP6

    static func entry(_ endpoints: [ProxyEndpoint], name: ServicePortName = web, port: UInt16 = 80,
                      clusterIPs: [IPAddress] = [clusterIP],
                      configure: (inout ServicePortEntry) -> Void = { _ in }) -> ServicePortEntry {
        IPTablesEndToEndTests.entry(endpoints, name: name, port: port, clusterIPs: clusterIPs, configure: configure)
    }

    @Test func clusterIPOverTCPAndUDPReachesEveryEndpoint() async throws {
        try await ProxyTopology.with(endpoints: 3) { net in
            let endpoints = (0..<3).map { net.endpoint($0) }
            let backend = try net.nftBackend()
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
            let listing = try net.nftTable()
            #expect(listing.contains("chain service-") && listing.contains("-default/web/tcp/http"), "\(listing)")
        }
    }

    @Test func nodePortExternalIPsAndLoadBalancerSourceRanges() async throws {
        try await ProxyTopology.with(endpoints: 2) { net in
            let entry = Self.entry([net.endpoint(0), net.endpoint(1)]) {
                $0.nodePort = 30080
                $0.externalIPs = [IPAddress("203.0.113.10")!]
                $0.loadBalancerIPs = [IPAddress("203.0.113.20")!]
                $0.loadBalancerSourceRanges = [IPCIDR("192.168.100.2/32")!]
            }
            try net.node.run(["ip", "addr", "add", "203.0.113.20/32", "dev", "lo"])
            try await net.nftBackend().sync(from: nil, to: ServiceTable([entry]))
            #expect(ProxyTopology.names(try net.probe("tcp", ProxyTopology.nodeIP, 30080, count: 20)) == ["ep0", "ep1"])
            #expect(ProxyTopology.names(try net.probe("tcp", "203.0.113.10", 80, count: 20)) == ["ep0", "ep1"])
            #expect(ProxyTopology.names(try net.probe("tcp", "203.0.113.20", 80, count: 20)) == ["ep0", "ep1"])
            let denied = try net.probe("tcp", "203.0.113.20", 80, source: ProxyTopology.otherClientIP, timeout: 1)
            #expect(denied == ["ERR timeout"])
        }
    }

    @Test func noEndpointsIsRefusedAtOnce() async throws {
        try await ProxyTopology.with(endpoints: 1) { net in
            let table = ServiceTable([Self.entry([]) { $0.nodePort = 30080 }, Self.entry([], name: Self.dns, port: 53)])
            try await net.nftBackend().sync(from: nil, to: table)
            #expect(try net.probe("tcp", "10.96.0.10", 80, timeout: 5) == ["ERR refused"])
            #expect(try net.probe("udp", "10.96.0.10", 53, timeout: 5) == ["ERR refused"])
            #expect(try net.probe("tcp", ProxyTopology.nodeIP, 30080, timeout: 5) == ["ERR refused"])
        }
    }

    @Test func externalTrafficPolicyLocalKeepsClientAddressAndDropsWithoutLocalEndpoints() async throws {
        try await ProxyTopology.with(endpoints: 2) { net in
            let local = net.endpoint(0, local: true), remote = net.endpoint(1)
            let backend = try net.nftBackend()
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
            let noLocal = entry([net.endpoint(0), remote])
            try await backend.sync(from: ServiceTable([withLocal]), to: ServiceTable([noLocal]))
            #expect(try net.probe("tcp", ProxyTopology.nodeIP, 30080, timeout: 1) == ["ERR timeout"])
            #expect(ProxyTopology.names(try net.probe("tcp", "10.96.0.10", 80, count: 20)) == ["ep0", "ep1"])
        }
    }

    @Test func sessionAffinitySticksAndExpires() async throws {
        try await ProxyTopology.with(endpoints: 4) { net in
            let entry = Self.entry((0..<4).map { net.endpoint($0) }) { $0.affinityTimeout = 2 }
            try await net.nftBackend().sync(from: nil, to: ServiceTable([entry]))
            let first = ProxyTopology.names(try net.probe("tcp", "10.96.0.10", 80, count: 15))
            #expect(first.count == 1, "\(first)")
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

    @Test func changedEndpointIsADataOnlyCommitAndRemovedServiceStopsAnswering() async throws {
        try await ProxyTopology.with(endpoints: 2) { net in
            let backend = try net.nftBackend()
            let other = ServicePortName(namespace: "default", name: "other", port: "", protocol: .tcp)
            let otherEntry = Self.entry([net.endpoint(1)], name: other, port: 81,
                                        clusterIPs: [IPAddress("10.96.0.11")!])
            let first = ServiceTable([Self.entry([net.endpoint(0)]), otherEntry])
            try await backend.sync(from: nil, to: first)
            #expect(try net.probe("tcp", "10.96.0.10", 80) == ["ep0 10.244.1.1"])

            let second = ServiceTable([Self.entry([net.endpoint(1)]), otherEntry])
            try await backend.sync(from: first, to: second)
            let changes = await backend.lastTransaction.changes
            let dataOnly = changes.allSatisfy {
                if case .add(.elements) = $0 { true } else if case .delete(.elements) = $0 { true } else { false }
            }
            #expect(dataOnly, "\(changes)")
            #expect(try net.probe("tcp", "10.96.0.10", 80) == ["ep1 10.244.2.1"])

            try await backend.sync(from: second, to: ServiceTable([otherEntry]))
            #expect(try net.probe("tcp", "10.96.0.10", 80, timeout: 1).first?.hasPrefix("ERR") == true)
            #expect(!(try net.nftTable()).contains("default/web/tcp/http"))
            #expect(try net.probe("tcp", "10.96.0.11", 81) == ["ep1 10.244.2.1"])
        }
    }

    /// A map element and a chain deleted with `nft` by hand come back at the next full sync.
    @Test func fullSyncRepairsWhatWasDeletedByHand() async throws {
        try await ProxyTopology.with(endpoints: 1) { net in
            let backend = try net.nftBackend()
            let table = ServiceTable([Self.entry([net.endpoint(0)]),
                                      Self.entry([net.endpoint(0)], name: Self.dns, port: 53)])
            try await backend.sync(from: nil, to: table)
            let before = try net.nftTable()
            let beforeContents = try Self.contents(net)
            // A second full sync of the same state finds nothing to change.
            try await backend.sync(from: nil, to: table)
            let second = await backend.lastTransaction
            #expect(second.isEmpty, "\(second.changes)")

            let chain = try #require(before.split(separator: "\n").first {
                $0.contains("chain service-") && $0.contains("/udp/dns")
            })
                .trimmingCharacters(in: .whitespaces).dropFirst("chain ".count).dropLast(" {".count)
            try net.node.run(["nft", "delete", "element", "ip", "strait", "service-ips", "{ 10.96.0.10 . tcp . 80 }"])
            try net.node.run(["nft", "delete", "element", "ip", "strait", "service-ips", "{ 10.96.0.10 . udp . 53 }"])
            try net.node.run(["nft", "delete", "chain", "ip", "strait", String(chain)])
            #expect(try net.probe("tcp", "10.96.0.10", 80, timeout: 1).first?.hasPrefix("ERR") == true)

            try await backend.sync(from: nil, to: table)
            #expect(try Self.contents(net) == beforeContents)
            #expect(try net.probe("tcp", "10.96.0.10", 80) == ["ep0 10.244.1.1"])
            #expect(try net.probe("udp", "10.96.0.10", 53) == ["ep0 10.244.1.1"])
        }
    }

    /// The built `strait proxy --proxy-mode nftables` fed through the store: packets, `/proxyMode`,
    /// an endpoint change, then `--cleanup` removes both families' tables.
    @Test func builtProxyInNFTablesMode() async throws {
        try await ProxyTopology.with(endpoints: 2) { net in
            let store = net.scripts + "/store.db", manifestPath = net.scripts + "/web.yaml"
            try ProxyCommandEndToEndTests.manifest.write(toFile: manifestPath, atomically: true, encoding: .utf8)
            let strait = builtProduct("strait")
            let proxy = try Command.start(["ip", "netns", "exec", net.node.name, strait, "proxy", "--store", store,
                                           "--proxy-mode", "nftables", "--hostname-override", "node",
                                           "--cluster-cidr", "10.244.0.0/16",
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
            let moved = ProxyCommandEndToEndTests.manifest.split(separator: "\n").dropLast(3).joined(separator: "\n")
            try moved.write(toFile: manifestPath, atomically: true, encoding: .utf8)
            try Command.run([strait, "apply", "-f", manifestPath, "--store", store])
            #expect(try await Self.eventually { try answering() == ["ep0"] })

            kill(proxy, SIGTERM)
            Command.waitForExit(proxy)
            try net.node.run([strait, "proxy", "--proxy-mode", "nftables", "--cleanup"])
            #expect(try net.node.output(["nft", "list", "table", "ip", "strait"]).status != 0)
            #expect(try net.node.output(["nft", "list", "table", "ip6", "strait"]).status != 0)
        }
    }

    static func eventually(_ check: () throws -> Bool) async throws -> Bool {
        for _ in 0..<100 {
            if try check() { return true }
            try await Task.sleep(for: .milliseconds(100))
        }
        return false
    }

    /// The node's table as values, without what only the kernel decides (handles, hash orders).
    static func contents(_ net: ProxyTopology) throws -> [String] {
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

    @Test func ipv6ClusterIPNodePortAffinityAndReject() async throws {
        try await ProxyTopology.with(endpoints: 2) { net in
            let endpoints = [net.endpoint(0, family: .ipv6), net.endpoint(1, family: .ipv6)]
            let backend = try net.nftBackend(family: .ipv6)
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
            #expect(tcp.allSatisfy { $0.hasSuffix("::1") }, "\(tcp)")
            #expect(ProxyTopology.names(try net.probe("udp", "fd00:96::10", 53, count: 30)) == ["ep0", "ep1"])
            let nodePort = try net.probe("tcp", ProxyTopology.nodeIP6, 30080, count: 20)
            #expect(ProxyTopology.names(nodePort) == ["ep0", "ep1"])
            #expect(ProxyTopology.names(try net.probe("tcp", "fd00:96::10", 82, count: 20)).count == 1)
            #expect(try net.probe("tcp", "fd00:96::10", 81, timeout: 5) == ["ERR refused"])
            #expect(try net.node.output(["nft", "list", "table", "ip", "strait"]).status != 0)
        }
    }

    @Test func dualStackServiceAnswersOnBothFamiliesAndCleanupRemovesBothTables() async throws {
        try await ProxyTopology.with(endpoints: 2) { net in
            let backend = DualStackBackend([try net.nftBackend(family: .ipv4), try net.nftBackend(family: .ipv6)])
            let entry = Self.entry([net.endpoint(0), net.endpoint(1, family: .ipv6)],
                                   clusterIPs: [Self.clusterIP, Self.clusterIP6]) { $0.nodePort = 30080 }
            try await backend.sync(from: nil, to: ServiceTable([entry]))
            #expect(ProxyTopology.names(try net.probe("tcp", "10.96.0.10", 80, count: 10)) == ["ep0"])
            #expect(ProxyTopology.names(try net.probe("tcp", "fd00:96::10", 80, count: 10)) == ["ep1"])
            #expect(ProxyTopology.names(try net.probe("tcp", ProxyTopology.nodeIP6, 30080, count: 5)) == ["ep1"])
            try await backend.cleanup()
            #expect(try net.node.output(["nft", "list", "table", "ip", "strait"]).status != 0)
            #expect(try net.node.output(["nft", "list", "table", "ip6", "strait"]).status != 0)
        }
    }
}

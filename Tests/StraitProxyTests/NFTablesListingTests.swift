import Foundation
import StraitModel
import StraitNFT
import StraitProxy
import StraitProxyNFTables
import StraitTestSupport
import Testing

/// The table the nftables mode writes, as an operator's `nft` (Debian's 1.0.6) sees it: it lists
/// the table with every feature, and its listing loads into a fresh namespace as the same table
/// (`nft list table ip strait > saved; nft -f saved`), for both families.
@Suite struct NFTablesListingTests {
    static let sticky = ServicePortName(namespace: "default", name: "sticky", port: "", protocol: .tcp)
    static let dns = ServicePortName(namespace: "default", name: "dns", port: "dns", protocol: .udp)
    static let empty = ServicePortName(namespace: "default", name: "empty", port: "", protocol: .tcp)
    static let local = ServicePortName(namespace: "default", name: "local", port: "", protocol: .sctp)
    static let remote = ServicePortName(namespace: "default", name: "remote", port: "", protocol: .tcp)

    /// ClusterIP with endpoints, NodePort, external and load-balancer IPs behind source ranges, ClientIP
    /// affinity, UDP and SCTP, no endpoints (reject), Local policy with a local endpoint (the local
    /// pool) and without one (drop).
    static func everyFeature(_ family: IPFamily) -> ServiceTable {
        let v4 = family == .ipv4
        func ip(_ four: String, _ six: String) -> IPAddress { IPAddress(v4 ? four : six)! }
        let endpoints = (1...3).map { ProxyEndpoint(address: ip("10.244.\($0).2", "fd00:244:\($0)::2"), port: 8080) }
        let localEndpoint = ProxyEndpoint(address: endpoints[0].address, port: 8080, isLocal: true)
        func entry(_ name: ServicePortName, _ port: UInt16, _ clusterIP: IPAddress, _ endpoints: [ProxyEndpoint],
                   configure: (inout ServicePortEntry) -> Void = { _ in }) -> ServicePortEntry {
            ProxyEndToEndTests.entry(endpoints, name: name, port: port, clusterIPs: [clusterIP], configure: configure)
        }
        return ServiceTable([
            entry(ProxyEndToEndTests.web, 80, ip("10.96.0.10", "fd00:96::10"), endpoints) {
                $0.nodePort = 30080
                $0.externalIPs = [ip("203.0.113.10", "2001:db8::10")]
                $0.loadBalancerIPs = [ip("203.0.113.20", "2001:db8::20")]
                $0.loadBalancerSourceRanges = [IPCIDR(v4 ? "192.168.100.0/24" : "fd00:100::/64")!]
            },
            entry(sticky, 82, ip("10.96.0.12", "fd00:96::12"), endpoints) {
                $0.affinityTimeout = 600
                $0.nodePort = 30082
            },
            entry(dns, 53, ip("10.96.0.53", "fd00:96::53"), Array(endpoints.prefix(1))),
            entry(empty, 81, ip("10.96.0.11", "fd00:96::11"), []) { $0.nodePort = 30081 },
            entry(local, 83, ip("10.96.0.13", "fd00:96::13"), [localEndpoint] + endpoints.dropFirst()) {
                $0.nodePort = 30083
                $0.externalTrafficPolicyLocal = true
            },
            entry(remote, 84, ip("10.96.0.14", "fd00:96::14"), endpoints) {
                $0.nodePort = 30084
                $0.externalTrafficPolicyLocal = true
            },
        ])
    }

    @Test("nft lists the table with every feature, and loads its own listing into a fresh namespace as the same table",
          arguments: [IPFamily.ipv4, .ipv6])
    func nftListsAndReloadsTheTable(family: IPFamily) async throws {
        try await withTestNamespaces(2) { namespaces in
            let (node, fresh) = (namespaces[0], namespaces[1])
            let backend = NFTablesBackend(family: family, options: ProxyTopology.options(),
                                          kernel: try NFTConnection(namespace: node.name))
            try await backend.sync(from: nil, to: Self.everyFeature(family))
            // Every rule reads back as written: a second full sync has nothing to change.
            try await backend.sync(from: nil, to: Self.everyFeature(family))
            let second = await backend.lastTransaction
            #expect(second.isEmpty, "\(second.changes)")
            let nftFamily = family == .ipv4 ? "ip" : "ip6"
            let listed = try node.output(["nft", "list", "table", nftFamily, "strait"])
            try #require(listed.succeeded, "nft list: \(listed.stderr)")
            let listing = listed.stdout
            // Every feature is in what nft printed, as rules an operator can read.
            for part in ["@affinity", "update @affinity", "add @affinity", "map @endpoints-", "numgen random mod 3",
                         "goto reject-chain", "drop", "service-nodeports", "firewall-", "external-", "local-",
                         "masquerade", "udp . 53", "sctp . 83", "tcp . 30084 : drop",
                         // The shared shape of the plain port dns: its chain and its endpoints as data.
                         "chain pool-size-1", "numgen random mod 1 map @cluster-endpoints",
                         "udp . 53 : goto pool-size-1"] {
                #expect(listing.contains(part), "\(part) missing from:\n\(listing)")
            }
            // The shape chain's first rule is the family's masquerade decision.
            let podNetwork = family == .ipv4 ? "ip saddr != 10.244.0.0/16" : "ip6 saddr != fd00:244::/32"
            let shape = listing.components(separatedBy: "chain pool-size-1 {").last ?? ""
            #expect(shape.trimmingCharacters(in: .whitespacesAndNewlines)
                        .hasPrefix("\(podNetwork) jump mark-for-masquerade"), "\(listing)")
            let saved = NSTemporaryDirectory() + "strait-listing-\(node.name).nft"
            try listing.write(toFile: saved, atomically: true, encoding: .utf8)
            defer { try? FileManager.default.removeItem(atPath: saved) }
            let loaded = try fresh.output(["nft", "-f", saved])
            try #require(loaded.succeeded, "nft -f of its own listing: \(loaded.stderr)\n\(listing)")
            let reloaded = try fresh.run(["nft", "list", "table", nftFamily, "strait"])
            #expect(Self.normalised(reloaded) == Self.normalised(listing), "\(reloaded)")
        }
    }

    /// The table of the version before (plain ports' masquerade as elements of `masquerade-all` and
    /// `masquerade-outside`, tested by the shape chains' first rules) is brought to this version's by the
    /// first full sync: the rules that use the old sets are rewritten before the sets are deleted.
    @Test("a full sync takes over the previous version's table: the masquerade sets and the rules using them go")
    func fullSyncTakesOverThePreviousVersionsTable() async throws {
        try await withTestNamespaces(1) { namespaces in
            let node = namespaces[0]
            let table = ServiceTable([ProxyEndToEndTests.entry([ProxyEndpoint(address: IPAddress("10.244.1.2")!,
                                                                              port: 8080)])])
            try await NFTablesBackend(family: .ipv4, options: ProxyTopology.options(),
                                      kernel: try NFTConnection(namespace: node.name)).sync(from: nil, to: table)
            // What the previous version wrote besides this one's table.
            for set in ["masquerade-all", "masquerade-outside"] {
                try node.run(["nft", "add set ip strait \(set) { type ipv4_addr . inet_proto . inet_service; }"])
            }
            try node.run(["nft", "add element ip strait masquerade-outside { 10.96.0.10 . tcp . 80 }"])
            try node.run(["nft", "insert rule ip strait pool-size-1 ip saddr != 10.244.0.0/16 "
                          + "ip daddr . meta l4proto . th dport @masquerade-outside jump mark-for-masquerade"])
            try node.run(["nft", "insert rule ip strait pool-size-1 "
                          + "ip daddr . meta l4proto . th dport @masquerade-all jump mark-for-masquerade"])

            let backend = NFTablesBackend(family: .ipv4, options: ProxyTopology.options(),
                                          kernel: try NFTConnection(namespace: node.name))
            try await backend.sync(from: nil, to: table)
            let listing = try node.run(["nft", "list", "table", "ip", "strait"])
            #expect(!listing.contains("masquerade-all") && !listing.contains("masquerade-outside"), "\(listing)")
            #expect(listing.contains("ip saddr != 10.244.0.0/16 jump mark-for-masquerade"), "\(listing)")
            try await backend.sync(from: nil, to: table)
            #expect(await backend.lastTransaction.isEmpty)
        }
    }

    /// A listing with the elements of each set sorted (a hash set lists in its own order, over
    /// one or more lines).
    static func normalised(_ listing: String) -> String {
        var rest = Substring(listing), result = ""
        while let open = rest.range(of: "elements = {"), let close = rest[open.upperBound...].firstIndex(of: "}") {
            result += rest[..<open.upperBound]
            let items = rest[open.upperBound..<close].split(separator: ",")
                .map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }.sorted()
            result += " " + items.joined(separator: ", ") + " "
            rest = rest[close...]
        }
        return result + rest
    }
}

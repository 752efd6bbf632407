import Foundation
import StraitNFT
import StraitTestSupport

/// The kube-proxy-like table most tests build: nat base chains, service chains, a verdict map.
enum Fixture {
    static let table = Table(.ip, "strait")
    static let natPrerouting = Chain(table: table, name: "nat-prerouting",
                                     base: BaseChain(type: .nat, hook: .prerouting, priority: Priority.dstnat))
    static let natOutput = Chain(table: table, name: "nat-output",
                                 base: BaseChain(type: .nat, hook: .output, priority: Priority.dstnat))
    static let natPostrouting = Chain(table: table, name: "nat-postrouting",
                                      base: BaseChain(type: .nat, hook: .postrouting, priority: Priority.srcnat))
    static let filterInput = Chain(table: table, name: "filter-input",
                                   base: BaseChain(type: .filter, hook: .input, priority: Priority.filter,
                                                   policy: .drop))
    static let services = Chain(table: table, name: "services")
    static let serviceA = Chain(table: table, name: "svc-a")
    static let serviceB = Chain(table: table, name: "svc-b")
    static let serviceIPs = NFTSet(table: table, name: "service-ips",
                                   keyType: [.ipv4Addr, .inetProto, .inetService], dataType: .verdict)
    static let clusterIPs = NFTSet(table: table, name: "cluster-ips", keyType: [.ipv4Addr])

    static let chains = [natPrerouting, natOutput, natPostrouting, filterInput, services, serviceA, serviceB]
    static let serviceElements = [
        Element("10.96.0.10", .proto(.tcp), .port(80), verdict: .goto("svc-a")),
        Element("10.96.0.11", .proto(.udp), .port(53), verdict: .goto("svc-b")),
    ]
    static let clusterElements = [Element(["10.96.0.10"]), Element(["10.96.0.11"])]
    static let rules = [
        Rule(in: natPrerouting, .jump("services")),
        Rule(in: services, .vmap([.ipDaddr, .l4proto, .thDport], map: "service-ips")),
        Rule(in: serviceA, .numgenVmap([.goto("svc-b"), .goto("svc-b")])),
        Rule(in: serviceB, .match(l4proto: .tcp), .counter, .dnat(to: "10.0.0.5", port: 8080),
             comment: "to endpoint"),
        Rule(in: natPostrouting, .match(mark: 0x4000, mask: 0x4000), .masquerade(.fullyRandom)),
        Rule(in: filterInput, .match(ctState: [.established, .related]), .accept),
        Rule(in: filterInput, .matchLocalDestination, .match(ipSaddr: "10.0.0.9"), .reject(.portUnreachable(.ip))),
        Rule(in: natOutput, .match([.ipDaddr], inSet: "cluster-ips"), .setMark(or: 0x4000)),
    ]

    static var transaction: Transaction {
        var tx = Transaction()
        tx.add(table)
        for chain in chains { tx.add(chain) }
        tx.add(serviceIPs)
        tx.add(clusterIPs)
        tx.add(serviceElements, to: serviceIPs)
        tx.add(clusterElements, to: clusterIPs)
        for rule in rules { tx.add(rule) }
        return tx
    }
}

extension TestNamespace {
    /// `nft list table FAMILY NAME` inside this namespace.
    func listTable(_ table: Table = Fixture.table) throws -> String {
        try run(["nft", "list", "table", "\(table.family)", table.name])
    }

    /// The same, one trimmed line per statement.
    func lines(of table: Table = Fixture.table) throws -> [String] {
        try listTable(table).split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
    }
}

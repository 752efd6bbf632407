import StraitNFT

/// `nft-commit-cost NETNS SERVICES [--shared-shape | --shared-shape-endpoints[-cold]]`: the kernel cost,
/// from this netlink client, of the commits the nftables proxy mode makes, in a table `ip strait-cost` of one
/// of two designs (deleted at the end):
/// - per-port chains (`ProxyShapedTable`, no option): SERVICES service chains reached through the verdict map
///   `service-ips`, each DNATing to `numgen random mod 10 offset POOL<<16` through the data map `endpoints-S`
///   of `address . port`, one of 256 shards by pool;
/// - shared shape chains (`SharedShapeTable`, `--shared-shape`), as the mode writes plain ports today.
/// Each commit 20 times, median and worst in ms:
/// - `endpoint`: one endpoint replaced (one element of its data map deleted and one added): data only;
/// - `service-add`: a new Service; `service-delete`: that Service removed again;
/// - `resize` (shared shape): a Service's pool shrinks to 9, its verdict element moved to `pool-size-9`.
/// `--shared-shape-endpoints` times 2,000 endpoint replacements alone, for a profiler; `-cold` writes 64 MB of
/// this process's memory before each, so each commit starts with the caches a large process leaves.
func nftCommitCostWorkload(_ arguments: [String]) throws {
    guard (2...3).contains(arguments.count), let services = Int(arguments[1]), services > 0 else {
        throw CommitCostUsage()
    }
    let connection = try NFTConnection(namespace: arguments[0])
    let table = Table(.ip, "strait-cost")
    switch arguments.count == 3 ? arguments[2] : nil {
    case nil: try measureCommitCost(connection, ProxyShapedTable(table: table), services: services)
    case "--shared-shape": try measureCommitCost(connection, SharedShapeTable(table: table), services: services)
    case "--shared-shape-endpoints":
        try measureCommitCost(connection, SharedShapeTable(table: table), services: services, endpointRounds: 2000)
    case "--shared-shape-endpoints-cold":
        try measureCommitCost(connection, SharedShapeTable(table: table), services: services, endpointRounds: 2000,
                              cold: true)
    default: throw CommitCostUsage()
    }
}

/// A table design reduced to what a commit's cost depends on, and the commits the mode makes in it.
protocol CommitCostTable {
    var table: Table { get }
    /// The whole table holding `services` Services, as one full sync writes it.
    func load(services: Int) -> Transaction
    /// Service `service`'s first endpoint replaced: generation `generation` out, the next one in.
    func replaceEndpoint(of service: Int, generation: Int) -> Transaction
    func addService(_ service: Int, to tx: inout Transaction)
    func removeService(_ service: Int, from tx: inout Transaction)
    /// The pool of `service` shrunk from 10 endpoints to 9, where the design makes that a commit of its own.
    func shrink(_ service: Int) -> Transaction?
}

/// Loads `shape` with `services` Services, times its commits and deletes the table. Each kind is timed 20 times
/// (median and worst in ms): `endpoint`, `service-add`, `service-delete` and, where the design has it, `resize`.
/// With `endpointRounds`: that many endpoint replacements alone, for a profiler; `cold`: 64 MB of this process's
/// memory written before each, so that each commit starts with the caches a large process leaves.
private func measureCommitCost(_ connection: NFTConnection, _ shape: some CommitCostTable, services: Int,
                               endpointRounds: Int? = nil, cold: Bool = false) throws {
    let setup = shape.load(services: services)
    let start = monotonicSeconds()
    try connection.commit(setup)
    print("full-load-ms=\(twoDecimals((monotonicSeconds() - start) * 1000))")
    defer {
        var cleanup = Transaction()
        cleanup.delete(shape.table)
        try? connection.commit(cleanup)
    }
    var samples: [(name: String, ms: [Double])] = [("endpoint", []), ("service-add", []), ("service-delete", []),
                                                   ("resize", [])]
    var generation: [Int: Int] = [:]
    func replaceEndpoint(_ round: Int) throws {
        let service = round * 7 % services
        let current = generation[service, default: 0]
        generation[service] = current + 1
        let change = shape.replaceEndpoint(of: service, generation: current)
        if cold { evictCaches() }
        samples[0].ms.append(try timed { try connection.commit(change) })
    }
    if let endpointRounds {
        for round in 0..<endpointRounds { try replaceEndpoint(round) }
    } else {
        var resized: Set<Int> = []
        for round in 0..<20 {
            try replaceEndpoint(round)
            var fresh = Transaction()
            shape.addService(services + round, to: &fresh)
            samples[1].ms.append(try timed { try connection.commit(fresh) })
            var gone = Transaction()
            shape.removeService(services + round, from: &gone)
            samples[2].ms.append(try timed { try connection.commit(gone) })
            let service = (round * 13 + 3) % services
            if resized.insert(service).inserted, let shrink = shape.shrink(service) {
                samples[3].ms.append(try timed { try connection.commit(shrink) })
            }
        }
    }
    for (name, values) in samples where !values.isEmpty {
        let sorted = values.sorted()
        print("\(name)-ms p50=\(twoDecimals(sorted[sorted.count / 2])) max=\(twoDecimals(sorted.last!))")
    }
}

private func timed(_ body: () throws -> Void) throws -> Double {
    let start = monotonicSeconds()
    try body()
    return (monotonicSeconds() - start) * 1000
}

/// The nftables mode's table with a chain per port, reduced to what a commit's cost depends on.
struct ProxyShapedTable: CommitCostTable {
    let table: Table
    var nat: Chain {
        Chain(table: table, name: "nat-prerouting",
              base: BaseChain(type: .nat, hook: .prerouting, priority: Priority.dstnat))
    }
    var services: Chain { Chain(table: table, name: "services") }
    var serviceIPs: NFTSet {
        NFTSet(table: table, name: "service-ips", keyType: [.ipv4Addr, .inetProto, .inetService], dataType: .verdict)
    }
    static let shards = 256
    /// As the mode types it (`typeof numgen random mod 2 : ip daddr . th dport`).
    func endpoints(_ service: Int) -> NFTSet {
        NFTSet(table: table, name: "endpoints-\(service % Self.shards)", keyType: [.integer],
               valueType: [.ipv4Addr, .inetService],
               typeof: SetTypeof(key: .numgen(modulus: 2), value: .concat([.payload(.ipDaddr), .payload(.thDport)])))
    }

    var skeleton: Transaction {
        var tx = Transaction()
        tx.add(table)
        tx.add(serviceIPs)
        for shard in 0..<Self.shards { tx.add(endpoints(shard)) }
        tx.add(nat)
        tx.add(services)
        tx.add(Rule(in: nat, .jump(services.name)))
        tx.add(Rule(in: services, .vmap([.ipDaddr, .l4proto, .thDport], map: serviceIPs.name)))
        return tx
    }

    func chain(_ service: Int) -> Chain { Chain(table: table, name: "service-\(service)") }
    func clusterIP(_ service: Int) -> Datum { .ipv4("10.\(96 + service >> 16).\(service >> 8 & 255).\(service & 255)") }
    func dispatch(_ service: Int) -> Element {
        Element(clusterIP(service), .proto(.tcp), .port(80), verdict: .goto(chain(service).name))
    }

    func endpointElement(_ service: Int, slot: Int, endpoint: Int) -> Element {
        let index = service * 10 + slot + endpoint * 7919
        return Element([.integer(UInt32(service) << 16 | UInt32(slot))],
                       .data([.ipv4("10.\(128 + index >> 16 & 63).\(index >> 8 & 255).\(index & 255)"), .port(8080)]))
    }

    /// Rules before elements, as the mode writes a full sync: a rule that binds a map makes the kernel
    /// check every element already in it.
    func load(services: Int) -> Transaction {
        var tx = skeleton
        for service in 0..<services { addService(service, to: &tx, elements: false) }
        for service in 0..<services { addElements(service, to: &tx) }
        return tx
    }

    func replaceEndpoint(of service: Int, generation: Int) -> Transaction {
        var tx = Transaction()
        tx.delete([endpointElement(service, slot: 0, endpoint: generation)], from: endpoints(service))
        tx.add([endpointElement(service, slot: 0, endpoint: generation + 1)], to: endpoints(service))
        return tx
    }

    func shrink(_ service: Int) -> Transaction? { nil }

    func addService(_ service: Int, to tx: inout Transaction) { addService(service, to: &tx, elements: true) }

    func addService(_ service: Int, to tx: inout Transaction, elements: Bool) {
        let chain = chain(service)
        tx.add(chain)
        tx.add(Rule(in: chain, .match(l4proto: .tcp), [
            .numgen(.random, modulus: 10, offset: UInt32(service) << 16, dreg: .reg1),
            .lookup(set: endpoints(service).name, sreg: .reg1, dreg: .reg1),
            .nat(.dnat, family: .ip, addressMin: .reg1, portMin: .reg32(1)),
        ]))
        if elements { addElements(service, to: &tx) }
    }

    func addElements(_ service: Int, to tx: inout Transaction) {
        tx.add((0..<10).map { endpointElement(service, slot: $0, endpoint: 0) }, to: endpoints(service))
        tx.add([dispatch(service)], to: serviceIPs)
    }

    func removeService(_ service: Int, from tx: inout Transaction) {
        tx.delete([dispatch(service)], from: serviceIPs)
        tx.delete((0..<10).map { endpointElement(service, slot: $0, endpoint: 0) }, from: endpoints(service))
        tx.delete(chain(service))
    }
}

/// The shared-shape design reduced to what a commit's cost depends on: one chain per pool size
/// (`pool-size-N`: `meta l4proto P dnat ip to ip daddr . meta l4proto . th dport . numgen random mod N
/// map @cluster-endpoints`), each Service a verdict element `goto pool-size-N` in `service-ips` and N data
/// elements in the one map `cluster-endpoints`. Shapes 1…16 exist, as a cluster's pool sizes would make them.
struct SharedShapeTable: CommitCostTable {
    let table: Table
    var base: ProxyShapedTable { ProxyShapedTable(table: table) }
    var serviceIPs: NFTSet { base.serviceIPs }
    var endpoints: NFTSet {
        NFTSet(table: table, name: "cluster-endpoints", keyType: [.ipv4Addr, .inetProto, .inetService, .integer],
               valueType: [.ipv4Addr, .inetService])
    }
    static let shapes = 1...16

    func shape(_ count: Int) -> Chain { Chain(table: table, name: "pool-size-\(count)") }

    var skeleton: Transaction {
        var tx = Transaction()
        tx.add(table)
        tx.add(serviceIPs)
        tx.add(endpoints)
        tx.add(base.nat)
        tx.add(base.services)
        tx.add(Rule(in: base.nat, .jump(base.services.name)))
        tx.add(Rule(in: base.services, .vmap([.ipDaddr, .l4proto, .thDport], map: serviceIPs.name)))
        for count in Self.shapes {
            let chain = shape(count)
            tx.add(chain)
            for proto in [L4Proto.tcp, .udp, .sctp] {
                tx.add(Rule(in: chain, .match(l4proto: proto), .load([.ipDaddr, .l4proto, .thDport]), [
                    .numgen(.random, modulus: UInt32(count), dreg: .reg32(3)),
                    .lookup(set: endpoints.name, sreg: .reg1, dreg: .reg1),
                    .nat(.dnat, family: .ip, addressMin: .reg1, portMin: .reg32(1)),
                ]))
            }
        }
        return tx
    }

    func dispatch(_ service: Int, endpoints count: Int = 10) -> Element {
        Element(base.clusterIP(service), .proto(.tcp), .port(80), verdict: .goto(shape(count).name))
    }

    func endpointElement(_ service: Int, slot: Int, endpoint: Int) -> Element {
        let index = service * 10 + slot + endpoint * 7919
        return Element([base.clusterIP(service), .proto(.tcp), .port(80), .integer(UInt32(slot))],
                       .data([.ipv4("10.\(128 + index >> 16 & 63).\(index >> 8 & 255).\(index & 255)"), .port(8080)]))
    }

    func load(services: Int) -> Transaction {
        var tx = skeleton
        for service in 0..<services { addService(service, to: &tx) }
        return tx
    }

    func replaceEndpoint(of service: Int, generation: Int) -> Transaction {
        var tx = Transaction()
        tx.delete([endpointElement(service, slot: 0, endpoint: generation)], from: endpoints)
        tx.add([endpointElement(service, slot: 0, endpoint: generation + 1)], to: endpoints)
        return tx
    }

    /// Its verdict element moved to `pool-size-9`, its last slot deleted.
    func shrink(_ service: Int) -> Transaction? {
        var tx = Transaction()
        tx.delete([dispatch(service, endpoints: 10)], from: serviceIPs)
        tx.delete([endpointElement(service, slot: 9, endpoint: 0)], from: endpoints)
        tx.add([dispatch(service, endpoints: 9)], to: serviceIPs)
        return tx
    }

    func addService(_ service: Int, to tx: inout Transaction) {
        tx.add((0..<10).map { endpointElement(service, slot: $0, endpoint: 0) }, to: endpoints)
        tx.add([dispatch(service)], to: serviceIPs)
    }

    func removeService(_ service: Int, from tx: inout Transaction) {
        tx.delete([dispatch(service)], from: serviceIPs)
        tx.delete((0..<10).map { endpointElement(service, slot: $0, endpoint: 0) }, from: endpoints)
    }
}

struct CommitCostUsage: Error, CustomStringConvertible {
    var description: String { "usage: strait-bench nft-commit-cost NETNS SERVICES "
        + "[--shared-shape | --shared-shape-endpoints | --shared-shape-endpoints-cold]" }
}

/// 64 MB, more than any cache of this machine, written a line at a time by `evictCaches`.
nonisolated(unsafe) private var evictionBuffer = [UInt8](repeating: 0, count: 64 << 20)
private func evictCaches() {
    evictionBuffer.withUnsafeMutableBufferPointer { buffer in
        for index in stride(from: 0, to: buffer.count, by: 64) { buffer[index] &+= 1 }
    }
}

import StraitNFT

/// `nft-commit-cost NETNS SERVICES`: the kernel cost of the commits the nftables proxy mode makes,
/// in a table shaped like the mode's (`ip strait-cost`: SERVICES service chains reached through the
/// verdict map `service-ips`, each DNATing to `numgen random mod 10 offset POOL<<16` through the data
/// map `endpoints-S` of `address . port`, one of 256 shards by pool). Times
/// from this netlink client, each commit 20 times, and prints the median and the worst in ms:
/// - `endpoint`: one endpoint replaced (delete and add one element of its data map): data only;
/// - `service-add`: a new Service (a chain, its rule, its endpoints, a verdict element);
/// - `service-delete`: that Service removed again (elements first, then the chain).
/// The table is deleted at the end.
func nftCommitCostWorkload(_ arguments: [String]) throws {
    guard (2...3).contains(arguments.count), let services = Int(arguments[1]), services > 0 else {
        throw CommitCostUsage()
    }
    let connection = try NFTConnection(namespace: arguments[0])
    if arguments.count == 3 {
        switch arguments[2] {
        case "--shared-shape": return try sharedShapeCommitCost(connection, services: services)
        case "--shared-shape-endpoints": return try sharedShapeCommitCost(connection, services: services,
                                                                          endpointRounds: 2000)
        case "--shared-shape-endpoints-cold": return try sharedShapeCommitCost(connection, services: services,
                                                                               endpointRounds: 2000, cold: true)
        default: throw CommitCostUsage()
        }
    }
    let shape = ProxyShapedTable(table: Table(.ip, "strait-cost"))
    // Rules before elements, as the mode writes a full sync: a rule that binds a map makes the kernel
    // check every element already in it.
    var setup = shape.skeleton
    for service in 0..<services { shape.addService(service, to: &setup, elements: false) }
    for service in 0..<services { shape.addElements(service, to: &setup) }
    let start = monotonicSeconds()
    try connection.commit(setup)
    print("full-load-ms=\(twoDecimals((monotonicSeconds() - start) * 1000))")
    defer {
        var cleanup = Transaction()
        cleanup.delete(shape.table)
        try? connection.commit(cleanup)
    }

    var endpoint: [Double] = [], add: [Double] = [], delete: [Double] = []
    var generation: [Int: Int] = [:]
    for round in 0..<20 {
        let service = round * 7 % services
        let current = generation[service, default: 0]
        generation[service] = current + 1
        var change = Transaction()
        change.delete([shape.endpointElement(service, slot: 0, endpoint: current)], from: shape.endpoints(service))
        change.add([shape.endpointElement(service, slot: 0, endpoint: current + 1)], to: shape.endpoints(service))
        endpoint.append(try timed { try connection.commit(change) })

        var fresh = Transaction()
        shape.addService(services + round, to: &fresh)
        add.append(try timed { try connection.commit(fresh) })
        var gone = Transaction()
        shape.removeService(services + round, from: &gone)
        delete.append(try timed { try connection.commit(gone) })
    }
    for (name, samples) in [("endpoint", endpoint), ("service-add", add), ("service-delete", delete)] {
        let sorted = samples.sorted()
        print("\(name)-ms p50=\(twoDecimals(sorted[sorted.count / 2])) max=\(twoDecimals(sorted.last!))")
    }
}

private func timed(_ body: () throws -> Void) throws -> Double {
    let start = monotonicSeconds()
    try body()
    return (monotonicSeconds() - start) * 1000
}

/// The nftables mode's table reduced to what a commit's cost depends on.
struct ProxyShapedTable {
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

    func addService(_ service: Int, to tx: inout Transaction, elements: Bool = true) {
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

/// `nft-commit-cost NETNS SERVICES --shared-shape`: the same commits in the shared-shape table (`SharedShapeTable`),
/// each 20 times, median and worst in ms:
/// - `endpoint`: one endpoint replaced (one element of `cluster-endpoints` deleted and added): data only;
/// - `service-add`: a new Service (its 10 data elements and its verdict element `goto pool-size-10`);
/// - `service-delete`: that Service removed again;
/// - `resize`: a Service's pool shrinks to 9 (its verdict element moved to `pool-size-9`, its last slot deleted).
///
/// With `endpointRounds` (`--shared-shape-endpoints`): that many endpoint replacements alone, for a profiler; `cold`
/// (`--shared-shape-endpoints-cold`): 64 MB of this process's memory written before each, so that each commit
/// starts with the caches a large process leaves (what the proxy's sync at 44,000 Services meets).
func sharedShapeCommitCost(_ connection: NFTConnection, services: Int, endpointRounds: Int? = nil,
                           cold: Bool = false) throws {
    let shape = SharedShapeTable(table: Table(.ip, "strait-cost"))
    var setup = shape.skeleton
    for service in 0..<services { shape.addService(service, to: &setup) }
    let start = monotonicSeconds()
    try connection.commit(setup)
    print("full-load-ms=\(twoDecimals((monotonicSeconds() - start) * 1000))")
    defer {
        var cleanup = Transaction()
        cleanup.delete(shape.table)
        try? connection.commit(cleanup)
    }
    var endpoint: [Double] = [], add: [Double] = [], delete: [Double] = [], resize: [Double] = []
    var resizedServices: Set<Int> = []
    if let endpointRounds {
        for round in 0..<endpointRounds {
            let service = round * 7 % services
            var change = Transaction()
            change.delete([shape.endpointElement(service, slot: 0, endpoint: round / services)], from: shape.endpoints)
            change.add([shape.endpointElement(service, slot: 0, endpoint: round / services + 1)], to: shape.endpoints)
            if cold { evictCaches() }
            endpoint.append(try timed { try connection.commit(change) })
        }
    }
    var generation: [Int: Int] = [:]
    for round in 0..<(endpointRounds == nil ? 20 : 0) {
        let service = round * 7 % services
        let current = generation[service, default: 0]
        generation[service] = current + 1
        var change = Transaction()
        change.delete([shape.endpointElement(service, slot: 0, endpoint: current)], from: shape.endpoints)
        change.add([shape.endpointElement(service, slot: 0, endpoint: current + 1)], to: shape.endpoints)
        endpoint.append(try timed { try connection.commit(change) })

        var fresh = Transaction()
        shape.addService(services + round, to: &fresh)
        add.append(try timed { try connection.commit(fresh) })
        var gone = Transaction()
        shape.removeService(services + round, from: &gone)
        delete.append(try timed { try connection.commit(gone) })

        let resized = (round * 13 + 3) % services
        guard resizedServices.insert(resized).inserted else { continue }
        var shrink = Transaction()
        shrink.delete([shape.dispatch(resized, endpoints: 10)], from: shape.serviceIPs)
        shrink.delete([shape.endpointElement(resized, slot: 9, endpoint: 0)], from: shape.endpoints)
        shrink.add([shape.dispatch(resized, endpoints: 9)], to: shape.serviceIPs)
        resize.append(try timed { try connection.commit(shrink) })
    }
    for (name, samples) in [("endpoint", endpoint), ("service-add", add), ("service-delete", delete),
                            ("resize", resize)] where !samples.isEmpty {
        let sorted = samples.sorted()
        print("\(name)-ms p50=\(twoDecimals(sorted[sorted.count / 2])) max=\(twoDecimals(sorted.last!))")
    }
}

/// The shared-shape design reduced to what a commit's cost depends on: one chain per pool size
/// (`pool-size-N`: `meta l4proto P dnat ip to ip daddr . meta l4proto . th dport . numgen random mod N
/// map @cluster-endpoints`), each Service a verdict element `goto pool-size-N` in `service-ips` and N data
/// elements in the one map `cluster-endpoints`. Shapes 1…16 exist, as a cluster's pool sizes would make them.
struct SharedShapeTable {
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

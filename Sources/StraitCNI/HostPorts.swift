import StraitModel
import StraitNFT

/// hostPort through nftables, in a table of strait-cni's own per family (`ip strait-hostport`,
/// `ip6 strait-hostport`): traffic to a local address on a mapped port is looked up in the verdict
/// map `hostports` (`proto . port : goto hp-…`) and DNATed to the pod in the attachment's chain.
/// Two pods asking for the same host port conflict on the map element, so the second ADD fails
/// instead of silently stealing the port.
///
/// Equivalent, per family:
///
///     table ip strait-hostport {
///         map hostports { type inet_proto . inet_service : verdict; }
///         chain prerouting { type nat hook prerouting priority dstnat; fib daddr type local meta l4proto . th dport vmap @hostports }
///         chain output { type nat hook output priority dstnat; fib daddr type local meta l4proto . th dport vmap @hostports }
///         chain hp-0123456789ab { meta l4proto tcp th dport 8080 dnat to 10.244.1.5:80 }
///     }
enum HostPorts {
    static let tableName = "strait-hostport"

    static func add(_ key: AttachmentKey, mappings: [PortMapping], podAddresses: [IPAddress]) throws(CNIError) {
        var transaction = Transaction()
        for address in podAddresses {
            let family = nftFamily(address)
            try ensureTable(family)
            let table = Table(family, tableName)
            let map = hostPortMap(table)
            let chain = Chain(table: table, name: chainName(key))
            transaction.add(chain)
            for mapping in mappings where mapping.hostIP.map({ isSameFamily($0, address) }) ?? true {
                let proto = l4proto(mapping)
                var parts: [[Expression]] = []
                if let hostIP = mapping.hostIP, !hostIP.isEmpty, hostIP != "0.0.0.0", hostIP != "::" {
                    parts.append(family == .ip ? .match(ipDaddr: hostIP) : .match(ip6Daddr: hostIP))
                }
                parts += [.match(l4proto: proto), .match(thDport: UInt16(mapping.hostPort)),
                          .dnat(to: datum(address), port: UInt16(mapping.containerPort), family: family)]
                transaction.add(Rule(table: table, chain: chain.name, expressions: parts.flatMap { $0 }))
                transaction.add([Element(.proto(proto), .port(UInt16(mapping.hostPort)), verdict: .goto(chain.name))], to: map)
            }
        }
        try commit(transaction, "map host ports of \(key.containerID)/\(key.ifname)")
    }

    /// Creates the family's table with its map and dispatch chains, unless it exists. `create`
    /// fails on an existing table, so two ADDs racing here cannot add the dispatch rules twice.
    private static func ensureTable(_ family: Family) throws(CNIError) {
        let table = Table(family, tableName)
        var transaction = Transaction()
        transaction.create(table)
        transaction.add(hostPortMap(table))
        for hook in [Hook.prerouting, .output] {
            let chain = Chain(table: table, name: hook == .prerouting ? "prerouting" : "output",
                              base: BaseChain(type: .nat, hook: hook, priority: Priority.dstnat))
            transaction.add(chain)
            transaction.add(Rule(in: chain, .matchLocalDestination, .vmap([.l4proto, .thDport], map: "hostports")))
        }
        do throws(CNIError) { try commit(transaction, "create table \(family) \(tableName)") } catch {
            guard isMissing(table: table, chain: "prerouting") else { return }
            throw error
        }
    }

    /// Removes the mappings recorded in `leases` (their map elements, then the attachment's chain).
    static func remove(_ key: AttachmentKey, leases: [Lease]) throws(CNIError) {
        for lease in leases {
            guard let mappings = lease.portMappings, !mappings.isEmpty else { continue }
            let table = Table(nftFamily(lease.address), tableName)
            let elements = mappings.filter { $0.hostIP.map { isSameFamily($0, lease.address) } ?? true }
                .map { Element(.proto(l4proto($0)), .port(UInt16($0.hostPort)), verdict: .goto(chainName(key))) }
            var transaction = Transaction()
            transaction.delete(elements, from: hostPortMap(table))
            transaction.delete(Chain(table: table, name: chainName(key)))
            do throws(CNIError) {
                try commit(transaction, "remove host ports of \(key.containerID)/\(key.ifname)")
            } catch {
                // Already gone (a DEL repeated, or an ADD that failed before committing): nothing to do.
                guard isMissing(table: table, chain: chainName(key)) else { throw error }
            }
        }
    }

    static func chainName(_ key: AttachmentKey) -> String { "hp-" + hostVethName(for: key).dropFirst(2) }

    private static func hostPortMap(_ table: Table) -> NFTSet {
        NFTSet(table: table, name: "hostports", keyType: [.inetProto, .inetService], dataType: .verdict)
    }

    private static func l4proto(_ mapping: PortMapping) -> L4Proto {
        switch (mapping.protocol ?? "tcp").lowercased() {
        case "udp": .udp
        case "sctp": .sctp
        default: .tcp
        }
    }

    private static func nftFamily(_ address: IPAddress) -> Family { address.family == .ipv4 ? .ip : .ip6 }
    private static func datum(_ address: IPAddress) -> Datum { address.family == .ipv4 ? .ipv4("\(address)") : .ipv6("\(address)") }
    private static func isSameFamily(_ text: String, _ address: IPAddress) -> Bool {
        text.isEmpty || text.contains(":") == (address.family == .ipv6)
    }

    private static func commit(_ transaction: Transaction, _ what: String) throws(CNIError) {
        do {
            let connection = try NFTConnection()
            try connection.commit(transaction)
        } catch {
            throw CNIError(.portMappingFailure, "\(what) failed", details: "\(error)")
        }
    }

    private static func isMissing(table: Table, chain: String) -> Bool {
        guard let connection = try? NFTConnection(), let listing = try? connection.list(table) else { return true }
        return !listing.chains.contains { $0.name == chain }
    }
}

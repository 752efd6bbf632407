import StraitModel
import StraitNFT

/// hostPort (the `portMappings` capability) through nftables: traffic to a local address on a
/// mapped port is DNATed to the pod, in a table per family (`ip strait-hostport`, `ip6 …`).
enum HostPorts {
    static func add(_ key: AttachmentKey, mappings: [PortMapping], podAddresses: [IPAddress]) throws(CNIError) {
        for address in podAddresses {
            let family: Family = address.family == .ipv4 ? .ip : .ip6
            let mine = mappings.filter { $0.hostIP.map { isSameFamily($0, address) } ?? true }
            let rules = mine.map { mapping -> [Expression] in
                var parts: [[Expression]] = []
                if let hostIP = mapping.hostIP, !hostIP.isEmpty, hostIP != "0.0.0.0", hostIP != "::" {
                    parts.append(family == .ip ? .match(ipDaddr: hostIP) : .match(ip6Daddr: hostIP))
                }
                parts += [.match(l4proto: l4proto(mapping)), .match(thDport: UInt16(mapping.hostPort)),
                          .dnat(to: Datum(address), port: UInt16(mapping.containerPort), family: family)]
                return parts.flatMap { $0 }
            }
            try table(family).add(key, rules: rules, keys: mine.map(elementKey))
        }
    }

    /// Removes the mappings recorded with the attachment's leases.
    static func remove(_ key: AttachmentKey, leases: [Lease]) throws(CNIError) {
        for lease in leases {
            guard let mappings = lease.portMappings, !mappings.isEmpty else { continue }
            let family: Family = lease.address.family == .ipv4 ? .ip : .ip6
            let mine = mappings.filter { $0.hostIP.map { isSameFamily($0, lease.address) } ?? true }
            try table(family).remove(key, keys: mine.map(elementKey))
        }
    }

    private static func table(_ family: Family) -> AttachmentNATTable {
        let table = Table(family, "strait-hostport")
        let dispatch: [[Expression]] = [.matchLocalDestination, .vmap([.l4proto, .thDport], map: "hostports")]
        return AttachmentNATTable(
            table: table,
            map: NFTSet(table: table, name: "hostports", keyType: [.inetProto, .inetService], dataType: .verdict),
            hooks: [.init(name: "prerouting", hook: .prerouting, priority: Priority.dstnat, dispatch: dispatch),
                    .init(name: "output", hook: .output, priority: Priority.dstnat, dispatch: dispatch)],
            chainPrefix: "hp-", purpose: "host ports")
    }

    private static func elementKey(_ mapping: PortMapping) -> [Datum] { [.proto(l4proto(mapping)), .port(UInt16(mapping.hostPort))] }

    private static func l4proto(_ mapping: PortMapping) -> L4Proto {
        switch (mapping.protocol ?? "tcp").lowercased() {
        case "udp": .udp
        case "sctp": .sctp
        default: .tcp
        }
    }

    private static func isSameFamily(_ text: String, _ address: IPAddress) -> Bool {
        text.isEmpty || text.contains(":") == (address.family == .ipv6)
    }
}

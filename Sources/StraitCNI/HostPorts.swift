import StraitModel
import StraitNFT

/// hostPort (the `portMappings` capability) through nftables: traffic to a local address on a
/// mapped port is DNATed to the pod, in a table per family (`ip strait-hostport`, `ip6 …`).
///
/// A mapping is keyed by host IP, protocol and port: a mapping with a `hostIP` goes into
/// `hostports-ip` (address . protocol . port), one without into `hostports` (protocol . port), and
/// the address-keyed map is consulted first. Two pods may so take port 8080 on two host IPs.
///
/// As `portmap` with `snat` (its default), connections that would not return through the node
/// are masqueraded after the DNAT: a pod reaching itself through its host port (hairpin), and the
/// node reaching a host port on 127.0.0.1 (`route_localnet` is set on the bridge so the kernel
/// routes those to the pod at all).
///
/// Equivalent, per pod 10.244.1.5 with 8080 → 80 on 192.168.1.10:
///
///     chain hp-0123456789ab { meta l4proto tcp th dport 8080 dnat to 10.244.1.5:80 }
///     chain hp-0123456789ab-snat { ip saddr 10.244.1.5 masquerade; ip saddr 127.0.0.0/8 masquerade }
///     map hostports-ip element { 192.168.1.10 . tcp . 8080 : goto hp-0123456789ab }
///     map snat element { 10.244.1.5 : goto hp-0123456789ab-snat }
enum HostPorts {
    static let snatChain = "-snat"

    static func add(_ key: AttachmentKey, mappings: [PortMapping], podAddresses: [IPAddress],
                    bridge: String) throws(CNIError) {
        for address in podAddresses {
            let family: Family = address.family == .ipv4 ? .ip : .ip6
            let mine = mappings.filter { isFamily($0, address) }
            guard !mine.isEmpty else { continue }
            let rules = mine.map { mapping -> [Expression] in
                var parts: [[Expression]] = []
                if let hostIP = specificHostIP(mapping) {
                    parts.append(family == .ip ? .match(ipDaddr: hostIP) : .match(ip6Daddr: hostIP))
                }
                parts += [.match(l4proto: l4proto(mapping)), .match(thDport: UInt16(mapping.hostPort)),
                          .dnat(to: datum(address), port: UInt16(mapping.containerPort), family: family)]
                return parts.flatMap { $0 }
            }
            let source: KeyField = family == .ip ? .ipSaddr : .ip6Saddr
            let hostLength = family == .ip ? 32 : 128
            let hairpin: [[Expression]] = [.match(source, inPrefix: datum(address), length: hostLength), .masquerade()]
            var snat = [hairpin.flatMap { $0 }]
            if family == .ip {
                let localhost: [[Expression]] = [.match(.ipSaddr, inPrefix: .ipv4("127.0.0.0"), length: 8), .masquerade()]
                snat.append(localhost.flatMap { $0 })
                try? writeSysfs("/proc/sys/net/ipv4/conf/\(bridge)/route_localnet", "1")
            }
            try table(family).add(key, chains: ["": rules, snatChain: snat], entries: entries(mine, address))
        }
    }

    /// Removes the mappings recorded with the attachment's leases.
    static func remove(_ key: AttachmentKey, leases: [Lease]) throws(CNIError) {
        for lease in leases {
            guard let mappings = lease.portMappings, !mappings.isEmpty else { continue }
            let family: Family = lease.address.family == .ipv4 ? .ip : .ip6
            let mine = mappings.filter { isFamily($0, lease.address) }
            guard !mine.isEmpty else { continue }
            try table(family).remove(key, entries: entries(mine, lease.address), chains: ["", snatChain])
        }
    }

    /// The map entries of one pod address: its mappings by (host IP,) protocol and port, and its
    /// address in the SNAT map.
    private static func entries(_ mappings: [PortMapping], _ address: IPAddress) -> [AttachmentNATTable.Entry] {
        var entries = mappings.map { mapping -> AttachmentNATTable.Entry in
            let portKey: [Datum] = [.proto(l4proto(mapping)), .port(UInt16(mapping.hostPort))]
            if let hostIP = specificHostIP(mapping) {
                return .init(map: "hostports-ip", key: [hostIP.contains(":") ? .ipv6(hostIP) : .ipv4(hostIP)] + portKey)
            }
            return .init(map: "hostports", key: portKey)
        }
        entries.append(.init(map: "snat", key: [datum(address)], chain: snatChain))
        return entries
    }

    private static func table(_ family: Family) -> AttachmentNATTable {
        let table = Table(family, "strait-hostport")
        let destination: KeyField = family == .ip ? .ipDaddr : .ip6Daddr
        let address: DataType = family == .ip ? .ipv4Addr : .ipv6Addr
        let byAddress: [[Expression]] = [.matchLocalDestination,
                                         .vmap([destination, .l4proto, .thDport], map: "hostports-ip")]
        let byPort: [[Expression]] = [.matchLocalDestination, .vmap([.l4proto, .thDport], map: "hostports")]
        let dispatch = [byAddress.flatMap { $0 }, byPort.flatMap { $0 }]
        return AttachmentNATTable(
            table: table,
            maps: [NFTSet(table: table, name: "hostports-ip", keyType: [address, .inetProto, .inetService],
                          dataType: .verdict),
                   NFTSet(table: table, name: "hostports", keyType: [.inetProto, .inetService], dataType: .verdict),
                   NFTSet(table: table, name: "snat", keyType: [address], dataType: .verdict)],
            hooks: [.init(name: "prerouting", hook: .prerouting, priority: Priority.dstnat, rules: dispatch),
                    .init(name: "output", hook: .output, priority: Priority.dstnat, rules: dispatch),
                    .init(name: "postrouting", hook: .postrouting, priority: Priority.srcnat,
                          rules: [.vmap([destination], map: "snat")])],
            chainPrefix: "hp-", purpose: "host ports", failure: .portMappingFailure)
    }

    /// The mapping's host IP when it names one address (not empty, 0.0.0.0 or ::).
    private static func specificHostIP(_ mapping: PortMapping) -> String? {
        guard let hostIP = mapping.hostIP, !hostIP.isEmpty, hostIP != "0.0.0.0", hostIP != "::" else { return nil }
        return hostIP
    }

    private static func l4proto(_ mapping: PortMapping) -> L4Proto {
        switch (mapping.protocol ?? "tcp").lowercased() {
        case "udp": .udp
        case "sctp": .sctp
        default: .tcp
        }
    }

    private static func datum(_ address: IPAddress) -> Datum { address.family == .ipv4 ? .ipv4("\(address)") : .ipv6("\(address)") }

    /// Whether the mapping applies to the pod address's family (a wildcard host IP applies to both).
    private static func isFamily(_ mapping: PortMapping, _ address: IPAddress) -> Bool {
        guard let hostIP = specificHostIP(mapping) else { return true }
        return hostIP.contains(":") == (address.family == .ipv6)
    }
}

import StraitModel
import StraitNFT

/// `ipMasq`: traffic from the pod to anything outside its subnet and the cluster network (multicast
/// aside) leaves with the node's address, as the bridge plugin's ipMasq does — for a standalone node,
/// or an overlay run without `--ip-masq` (the subnet file's `*_IPMASQ=false`).
///
/// Equivalent: `table ip strait-masq { map pods { type ipv4_addr : verdict; }
/// chain postrouting { type nat hook postrouting priority srcnat; ip saddr vmap @pods }
/// chain masq-0123456789ab { ip daddr != 10.244.1.0/24 ip daddr != 224.0.0.0/4 masquerade } }`.
enum PodMasquerade {
    static func add(_ key: AttachmentKey, leases: [Lease], clusterNetworks: [String] = []) throws(CNIError) {
        for lease in leases {
            let (table, field, multicast) = parts(lease)
            let network = datum(lease.subnet.network)
            var rule: [[Expression]] = [.match(field, inPrefix: network, length: lease.subnet.prefixLength, negated: true)]
            for text in clusterNetworks {
                guard let cluster = try? IPCIDR(networkParsing: text), cluster.family == lease.address.family else {
                    continue
                }
                rule.append(.match(field, inPrefix: datum(cluster.network), length: cluster.prefixLength,
                                   negated: true))
            }
            rule += [.match(field, inPrefix: multicast.address, length: multicast.length, negated: true), .masquerade()]
            try table.add(key, rules: [rule.flatMap { $0 }], keys: [[datum(lease.address)]])
        }
    }

    static func remove(_ key: AttachmentKey, leases: [Lease]) throws(CNIError) {
        for lease in leases { try parts(lease).table.remove(key, keys: [[datum(lease.address)]]) }
    }

    private static func parts(_ lease: Lease) -> (table: AttachmentNATTable, destination: KeyField, multicast: (address: Datum, length: Int)) {
        let v4 = lease.address.family == .ipv4
        let table = Table(v4 ? .ip : .ip6, "strait-masq")
        let source: KeyField = v4 ? .ipSaddr : .ip6Saddr
        let nat = AttachmentNATTable(
            table: table,
            maps: [NFTSet(table: table, name: "pods", keyType: [source.dataType], dataType: .verdict)],
            hooks: [.init(name: "postrouting", hook: .postrouting, priority: Priority.srcnat,
                          rules: [.vmap([source], map: "pods")])],
            chainPrefix: "masq-", purpose: "masquerade", failure: .kernelFailure)
        return (nat, v4 ? .ipDaddr : .ip6Daddr, v4 ? (.ipv4("224.0.0.0"), 4) : (.ipv6("ff00::"), 8))
    }

    private static func datum(_ address: IPAddress) -> Datum { address.family == .ipv4 ? .ipv4("\(address)") : .ipv6("\(address)") }
}

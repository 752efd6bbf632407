import StraitModel
import StraitNFT
import StraitProxy

/// The fixed part of the table `strait` of one family: its base chains (kube-proxy's nftables
/// hooks and priorities), the chains every Service shares, and the maps a sync fills. Per-port
/// objects (`ServicePortObjects`) hang off these.
///
/// A packet's way: nat `prerouting`/`output` → `services`: the verdict map `service-ips`
/// (`daddr . l4proto . dport`), then for local destinations `service-nodeports`; a plain port goes to
/// the shape chain of its pool size, `pool-size-N`, which picks an endpoint with `numgen random mod N`
/// from the data map `cluster-endpoints` (keyed by the packet's `daddr . l4proto . dport` and the slot,
/// `SharedShape`); a port with chains of its own picks from the data maps `endpoints-S` (keyed by pool
/// and slot). Either way an endpoint change is a data-only commit. The filter
/// chains (before DNAT) reject or drop what `no-endpoint-services` / `no-endpoint-nodeports` name.
/// nat `postrouting` masquerades what carries the mark.
struct NFTablesLayout: Sendable {
    let family: IPFamily
    let options: ProxyOptions
    let table: Table

    static let tableName = "strait"
    static let masqueradeMark: UInt32 = 0x4000

    init(family: IPFamily, options: ProxyOptions) {
        self.family = family
        self.options = options
        table = Table(family == .ipv4 ? .ip : .ip6, Self.tableName, comment: "rules for strait proxy")
    }

    var nftFamily: Family { table.family }
    var addressType: DataType { family == .ipv4 ? .ipv4Addr : .ipv6Addr }
    var saddr: KeyField { family == .ipv4 ? .ipSaddr : .ip6Saddr }
    var daddr: KeyField { family == .ipv4 ? .ipDaddr : .ip6Daddr }

    // MARK: Chains

    func chain(_ name: String, _ base: BaseChain? = nil) -> Chain { Chain(table: table, name: name, base: base) }

    /// kube-proxy's filter chains run at `dstnat - 10`: before DNAT, so they see the service address.
    static let filterPriority = Priority.dstnat - 10

    var filterInput: Chain {
        chain("filter-input", BaseChain(type: .filter, hook: .input, priority: Self.filterPriority))
    }
    var filterForward: Chain {
        chain("filter-forward", BaseChain(type: .filter, hook: .forward, priority: Self.filterPriority))
    }
    var filterOutput: Chain {
        chain("filter-output", BaseChain(type: .filter, hook: .output, priority: Self.filterPriority))
    }
    var natPrerouting: Chain {
        chain("nat-prerouting", BaseChain(type: .nat, hook: .prerouting, priority: Priority.dstnat))
    }
    var natOutput: Chain { chain("nat-output", BaseChain(type: .nat, hook: .output, priority: Priority.dstnat)) }
    var natPostrouting: Chain {
        chain("nat-postrouting", BaseChain(type: .nat, hook: .postrouting, priority: Priority.srcnat))
    }
    var services: Chain { chain("services") }
    var serviceEndpointsCheck: Chain { chain("service-endpoints-check") }
    var nodePortEndpointsCheck: Chain { chain("nodeport-endpoints-check") }
    var rejectChain: Chain { chain("reject-chain") }
    var markForMasquerade: Chain { chain("mark-for-masquerade") }
    var masquerading: Chain { chain("masquerading") }


    // MARK: Sets and maps

    /// `daddr . l4proto . dport : verdict` — cluster, external and load-balancer IPs to their chains.
    var serviceIPs: NFTSet { map(Self.serviceIPsName, [addressType, .inetProto, .inetService], .verdict) }
    static let serviceIPsName = "service-ips"
    /// `l4proto . dport : verdict` — node ports, for local destinations.
    var serviceNodePorts: NFTSet { map("service-nodeports", [.inetProto, .inetService], .verdict) }
    /// Addresses whose traffic is rejected (`goto reject-chain`) or dropped, before DNAT.
    var noEndpointServices: NFTSet { map("no-endpoint-services", [addressType, .inetProto, .inetService], .verdict) }
    var noEndpointNodePorts: NFTSet { map("no-endpoint-nodeports", [.inetProto, .inetService], .verdict) }
    /// `pool key + slot : address . port` — the endpoints `numgen` picks from, in one of
    /// `endpointShards` maps by pool. The key is one integer, a pool's number in its high 16 bits
    /// and the slot in the low ones (`numgen random mod N offset POOL<<16`), typed by `typeof` so
    /// that `nft` 1.0.6 prints the map and its rules in a form it parses again
    /// (`dnat ip to numgen random mod 3 offset 327680 map @endpoints-5`); the value's
    /// concatenation sets address and port in one `dnat`.
    ///
    /// Why shards: every rule that looks a map up is a binding of it, and the kernel checks each
    /// new element of a map against every binding (`nft_validate_register_store` per binding), so
    /// one map for all Services made a full sync quadratic (10.5 s for the 100,000 elements of
    /// 5,000 Services × 10) and one endpoint change cost a walk over every Service. Many shards cost
    /// a name lookup per rule (the kernel finds sets by walking a list).
    func endpoints(shard: Int) -> NFTSet {
        let value: TypeofExpression = .concat([.payload(daddrTemplate), .payload(.thDport)])
        return NFTSet(table: table, name: "endpoints-\(shard)", keyType: [.integer],
                      valueType: [addressType, .inetService], typeof: SetTypeof(key: .numgen(modulus: 2), value: value))
    }
    static let endpointShards = 256
    static func shard(_ pool: UInt32) -> Int { Int(pool % UInt32(endpointShards)) }
    /// The key of a pool's slot in its endpoint map.
    static func endpointKey(pool: UInt32, slot: Int) -> UInt32 { pool << 16 | UInt32(slot) }
    /// `saddr . endpoint key`, written by the packet path: ClientIP affinity, a client and the
    /// slot it was given, each entry with its Service's timeout.
    var affinity: NFTSet {
        let key: TypeofExpression = .concat([.payload(saddrTemplate), .numgen(modulus: 2)])
        return NFTSet(table: table, name: "affinity", keyType: [addressType, .integer], valueType: [],
                      flags: [.dynamic, .timeout], typeof: SetTypeof(key: key))
    }
    var saddrTemplate: PayloadTemplate { family == .ipv4 ? .ipSaddr : .ip6Saddr }
    var daddrTemplate: PayloadTemplate { family == .ipv4 ? .ipDaddr : .ip6Daddr }
    /// `endpoint . endpoint`: a packet from an endpoint DNATed to itself (hairpin) is masqueraded. Only
    /// endpoints that may be on this node are here (`ServicePortObjects.hairpinAddresses`).
    var hairpin: NFTSet { NFTSet(table: table, name: "hairpin-endpoints", keyType: [addressType, addressType]) }
    func hairpinElement(_ endpoint: IPAddress) -> Element { Element([Datum(endpoint), Datum(endpoint)]) }

    /// The maps two ports may put the same key in (an address and port claimed twice). The endpoint
    /// data maps `endpoints-S` are keyed by pool numbers, each port's own; the hairpin set is counted apart;
    /// the shared shape's map follows the `service-ips` element shown (`ServicePortObjects.shapeElements`).
    static let sharedMaps: Set<String> = ["service-ips", "service-nodeports", "no-endpoint-services",
                                          "no-endpoint-nodeports"]
    func isShared(_ set: String) -> Bool { Self.sharedMaps.contains(set) }

    private func map(_ name: String, _ key: [DataType], _ value: DataType) -> NFTSet {
        NFTSet(table: table, name: name, keyType: key, dataType: value)
    }

    var sets: [NFTSet] {
        [serviceIPs, serviceNodePorts, noEndpointServices, noEndpointNodePorts, affinity, hairpin,
         clusterEndpoints]
            + (0..<Self.endpointShards).map { endpoints(shard: $0) }
    }

    /// Sets whose elements the packet path writes: a sync neither fills nor repairs them.
    var dynamicSets: Set<String> { [affinity.name] }

    // MARK: The fixed chains and their rules, in the order they are created

    var fixedChains: [(chain: Chain, rules: [Rule])] {
        let newState: [Expression] = .match(ctState: .new)
        let loopback: (Datum, Int) = family == .ipv4 ? (.ipv4("127.0.0.0"), 8) : (.ipv6("::1"), 128)
        var nodePorts: [Rule] = []
        let ranges = options.nodePortRanges(family)
        let dispatch: [Expression] = .vmap([.l4proto, .thDport], map: serviceNodePorts.name)
        if ranges.isEmpty {
            nodePorts.append(Rule(in: services, .matchLocalDestination,
                                  .match(daddr, inPrefix: loopback.0, length: loopback.1, negated: true), dispatch))
        } else {
            for range in ranges {
                nodePorts.append(Rule(in: services,
                                      .match(daddr, inPrefix: Datum(range.network), length: range.prefixLength),
                                      .matchLocalDestination, dispatch))
            }
        }
        return [
            (services, [Rule(in: services, .vmap([daddr, .l4proto, .thDport], map: serviceIPs.name))] + nodePorts),
            (serviceEndpointsCheck, [Rule(in: serviceEndpointsCheck,
                                          .vmap([daddr, .l4proto, .thDport], map: noEndpointServices.name))]),
            (nodePortEndpointsCheck, [Rule(in: nodePortEndpointsCheck, .matchLocalDestination,
                                           .vmap([.l4proto, .thDport], map: noEndpointNodePorts.name))]),
            (rejectChain, [Rule(in: rejectChain, .reject(.portUnreachable(nftFamily)))]),
            (markForMasquerade, [Rule(in: markForMasquerade, .setMark(or: Self.masqueradeMark))]),
            (masquerading, [
                Rule(in: masquerading, .match([saddr, daddr], inSet: hairpin.name), .setMark(or: Self.masqueradeMark)),
                Rule(in: masquerading, .match(mark: 0, mask: Self.masqueradeMark), .return),
                Rule(in: masquerading, .clearMark(Self.masqueradeMark)),
                Rule(in: masquerading, .masquerade(.fullyRandom)),
            ]),
            (filterInput, [Rule(in: filterInput, newState, .jump(nodePortEndpointsCheck.name)),
                           Rule(in: filterInput, newState, .jump(serviceEndpointsCheck.name))]),
            (filterForward, [Rule(in: filterForward, newState, .jump(serviceEndpointsCheck.name))]),
            (filterOutput, [Rule(in: filterOutput, newState, .jump(serviceEndpointsCheck.name))]),
            (natPrerouting, [Rule(in: natPrerouting, .jump(services.name))]),
            (natOutput, [Rule(in: natOutput, .jump(services.name))]),
            (natPostrouting, [Rule(in: natPostrouting, .jump(masquerading.name))]),
        ]
    }
}

import StraitModel
import StraitNFT
import StraitProxy

/// Plain ports — a cluster IP forwarded to a pool, without ClientIP affinity, without a node port,
/// external or load-balancer IP — own no chain. They share one "shape" chain per pool size N,
/// `pool-size-N`, which DNATs through the one data map `cluster-endpoints`, keyed by the packet itself:
///
///     meta l4proto tcp dnat ip to ip daddr . meta l4proto . th dport . numgen random mod N map @cluster-endpoints
///
/// A plain port is then only data: its cluster IP's verdict element `goto pool-size-N` in `service-ips`, its
/// N slots as elements `daddr . proto . port . slot : address . port` of `cluster-endpoints`. Its masquerade
/// decision is the family's (`--masquerade-all`, else sources outside `--cluster-cidr`, else none), the same
/// for every plain port, so it is a rule at the top of each shape chain, not data. The slots are keyed by the
/// cluster IP and port: should two ports claim the same, the table holds the elements of the port whose
/// dispatch element it shows (`NFTablesState`), so only the dispatch key is counted per port. The table keeps a handful of
/// chains whatever the number of Services, so a commit — which walks every chain of the table in the
/// kernel (`nf_tables_commit`) — costs the same at 1,000 and 44,000 Services.
///
/// Why one map needs no shards here: the kernel checks a new element against every binding of its map
/// (one per rule looking it up), and the bindings are the three rules of each shape chain.
enum SharedShape {
    /// Whether `plan` is a plain port whose objects are all data; the others keep their own chains
    /// (`ServicePortObjects`). Its masquerade must be the one the shape chains apply, the family's (which
    /// is what the core plans).
    static func pool(of plan: ServicePortPlan, layout: NFTablesLayout) -> EndpointPool? {
        guard case .forward(let pool) = plan.clusterIPTraffic, plan.affinityTimeout == nil,
              plan.externalTraffic == nil, plan.externalStage == nil, plan.firewall == nil, plan.nodePort == nil,
              plan.externalIPs.isEmpty, plan.loadBalancerIPs.isEmpty,
              plan.clusterIPMasquerade == layout.plainMasquerade else { return nil }
        return pool
    }

    /// The elements `objects` gives a plain port in `cluster-endpoints`, at most (a slot per endpoint and
    /// cluster IP; none for the other ports): what a full sync reserves for the map.
    static func slotCount(of plan: ServicePortPlan, layout: NFTablesLayout) -> Int {
        guard let pool = pool(of: plan, layout: layout) else { return 0 }
        return plan.clusterIPs.count * min(plan.endpoints(of: pool).count, EndpointSlots.maxSlots)
    }

    /// The data of a plain port forwarding to `slots`.
    static func objects(_ plan: ServicePortPlan, slots: PoolSlots, layout: NFTablesLayout) -> ServicePortObjects {
        var entries: [Element] = []
        entries.reserveCapacity(plan.clusterIPs.count * slots.slots.count)
        var objects = objects(plan, slots: slots, layout: layout, appendingShapeElementsTo: &entries)
        objects.shapeElements = entries
        return objects
    }

    /// The data of a plain port forwarding to `slots`, its shape elements appended to `shapeElements`
    /// instead (a full sync's array of them all: no array per port, no copy of each element).
    static func objects(_ plan: ServicePortPlan, slots: PoolSlots, layout: NFTablesLayout,
                        appendingShapeElementsTo entries: inout [Element]) -> ServicePortObjects {
        let proto: Datum = .proto(ServicePortObjects.l4proto(plan.protocol))
        let port: Datum = .port(plan.port)
        let count = UInt32(slots.slots.count)
        // Built once a port, not once an address: a full sync builds 5,000 ports.
        let shape: ElementValue = .verdict(.goto(NFTablesLayout.shapeChainName(count)))
        var dispatch: [Element] = []
        dispatch.reserveCapacity(plan.clusterIPs.count)
        for ip in plan.clusterIPs {
            let key = Element.Fields(Datum(ip), proto, port)
            dispatch.append(Element(key, shape))
            // The endpoints' addresses and ports are read in place, not each endpoint copied.
            slots.slots.withUnsafeBufferPointer { endpoints in
                for slot in endpoints.indices {
                    let value = Element.Fields(Datum(endpoints[slot].address), .port(endpoints[slot].port))
                    entries.append(Element(key.appending(.integer(UInt32(slot))), .data(value)))
                }
            }
        }
        let hairpin = ServicePortObjects.hairpinAddresses(slots.slots)
        return ServicePortObjects(chains: [], elements: [NFTablesLayout.serviceIPsName: dispatch], hairpin: hairpin,
                                  shape: count)
    }
}

extension NFTablesLayout {
    /// The family's pod network, which the shape chains test sources against.
    var podCIDR: IPCIDR? { options.clusterCIDR(family) }

    /// The masquerade every plain port's cluster IP traffic gets, as the core plans it for the family.
    var plainMasquerade: SourceMasquerade {
        options.masqueradeAll ? .all : podCIDR.map { .outside($0) } ?? .none
    }

    /// `daddr . l4proto . dport . slot : address . port` — the endpoints of every plain port, typed by
    /// `typeof ip daddr . meta l4proto . th dport . numgen random mod 2 : ip daddr . th dport` so that nft
    /// 1.0.6 prints the map and the shape chains' rules in a form it parses again.
    var clusterEndpoints: NFTSet {
        let key: TypeofExpression = .concat([.payload(daddrTemplate), .meta(.l4proto), .payload(.thDport),
                                             .numgen(modulus: 2)])
        let value: TypeofExpression = .concat([.payload(daddrTemplate), .payload(.thDport)])
        return NFTSet(table: table, name: Self.clusterEndpointsName,
                      keyType: [addressType, .inetProto, .inetService, .integer],
                      valueType: [addressType, .inetService], typeof: SetTypeof(key: key, value: value))
    }

    /// The chain plain ports of `count` endpoints share.
    func shapeChain(_ count: UInt32) -> Chain { chain(Self.shapeChainName(count)) }
    static func shapeChainName(_ count: UInt32) -> String { shapeChainPrefix + String(count) }
    static let shapeChainPrefix = "pool-size-"
    static let clusterEndpointsName = "cluster-endpoints"

    /// The shape chain's rules: the family's masquerade decision (`plainMasquerade`), then per protocol
    /// `meta l4proto P dnat ip to ip daddr . meta l4proto . th dport . numgen random mod N map @cluster-endpoints`
    /// (nft needs the protocol match to accept a port from a map). The key's fields sit in consecutive
    /// 4-byte registers from `reg1`; the map's `address . port` comes back in `reg1` and the unit after the address.
    func shapeRules(_ count: UInt32) -> [Rule] {
        let chain = shapeChain(count)
        let destination: [KeyField] = [daddr, .l4proto, .thDport]
        let mark: [Expression] = .jump(markForMasquerade.name)
        var rules: [Rule] = []
        switch plainMasquerade {
        case .none: break
        case .all: rules.append(Rule(in: chain, mark))
        case .outside(let cidr):
            rules.append(Rule(in: chain, .match(saddr, inPrefix: Datum(cidr.network), length: cidr.prefixLength,
                                                negated: true), mark))
        }
        let slot: Register = family == .ipv4 ? .reg32(3) : .reg32(6)
        for proto in [L4Proto.tcp, .udp, .sctp] {
            rules.append(Rule(in: chain, .match(l4proto: proto), .load(destination), [
                .numgen(.random, modulus: count, dreg: slot),
                .lookup(set: clusterEndpoints.name, sreg: .reg1, dreg: .reg1),
                .nat(.dnat, family: nftFamily, addressMin: .reg1, portMin: ServicePortObjects.afterAddress(self)),
            ]))
        }
        return rules
    }
}

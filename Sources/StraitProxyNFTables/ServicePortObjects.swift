import StraitModel
import StraitNFT
import StraitProxy

/// Everything one Service port's plan puts in the table: its own chains with their rules, and its
/// elements in the shared maps. A pure function of the plan, the layout and the port's endpoint
/// pools (`PoolSlots`), testable without a kernel.
struct ServicePortObjects: Sendable, Hashable {
    /// The port's chains in the order they may be created; each refers only to chains before it
    /// (pools, then the external stage, then the firewall), so deletion runs backwards.
    var chains: [(Chain, [Rule])]
    /// Elements by set name (the hairpin set aside).
    var elements: [String: [Element]]
    /// The endpoint addresses of its pools, each once: the hairpin set's elements.
    var hairpin: [IPAddress]
    /// A plain port's pool size: it owns no chain and goes to the shared chain `pool-size-N` (`SharedShape`).
    var shape: UInt32? = nil
    /// A plain port's elements of `cluster-endpoints`, keyed by its cluster IP and port. They are in the table
    /// while the port's dispatch element is the one shown (`NFTablesState`).
    var shapeElements: [Element] = []

    static let none = ServicePortObjects(chains: [], elements: [:], hairpin: [])

    static func == (a: ServicePortObjects, b: ServicePortObjects) -> Bool {
        a.chains.map(\.0) == b.chains.map(\.0) && a.chains.map(\.1) == b.chains.map(\.1) && a.elements == b.elements
            && a.hairpin == b.hairpin && a.shape == b.shape && a.shapeElements == b.shapeElements
    }

    func hash(into hasher: inout Hasher) {
        hasher.combine(chains.map(\.0))
        hasher.combine(elements)
        hasher.combine(hairpin)
        hasher.combine(shape)
    }

    /// Its shape elements grouped by the dispatch key (`daddr . proto . port`) they belong to (one group
    /// for the usual port of one cluster IP).
    var shapeGroups: [Element.Fields: [Element]] {
        guard !shapeElements.isEmpty else { return [:] }
        // One cluster IP: the one dispatch element's key.
        if elements.count == 1, let dispatch = elements.first?.value, dispatch.count == 1 {
            return [dispatch[0].key: shapeElements]
        }
        var groups: [Element.Fields: [Element]] = [:]
        for element in shapeElements { groups[Element.Fields(element.key.prefix(3)), default: []].append(element) }
        return groups
    }

    func rules(of chain: String) -> [Rule]? { chains.first { $0.0.name == chain }?.1 }
}

/// One endpoint pool of a port as the table holds it: a 16-bit number the data maps key it by (the
/// high half of each key), and its endpoints in slot order (slot i holds `slots[i]`, key `id << 16 | i`).
struct PoolSlots: Sendable, Hashable {
    var id: UInt32
    var slots: [ProxyEndpoint]
}

extension ServicePortObjects {
    /// The objects of `plan`; `pools` holds the slots of each pool the plan has. A plain port is data in
    /// the shared shape (`SharedShape`); the others have chains of their own.
    init(_ plan: ServicePortPlan, pools: EndpointSlots.PortPools, layout: NFTablesLayout) {
        var shapeElements: [Element] = []
        self.init(plan, pools: pools, layout: layout, appendingShapeElementsTo: &shapeElements)
        self.shapeElements = shapeElements
    }

    /// The objects of `plan` but a plain port's shape elements, which are appended to `shapeElements`
    /// (a full sync's array of them all).
    init(_ plan: ServicePortPlan, pools: EndpointSlots.PortPools, layout: NFTablesLayout,
         appendingShapeElementsTo shapeElements: inout [Element]) {
        if let pool = SharedShape.pool(of: plan, layout: layout), let slots = pools[pool], !slots.slots.isEmpty {
            self = SharedShape.objects(plan, slots: slots, layout: layout, appendingShapeElementsTo: &shapeElements)
            return
        }
        let name = plan.name
        let proto: Datum = .proto(Self.l4proto(plan.protocol))
        let port: Datum = .port(plan.port)
        let externalChain = layout.chain(NFTablesChainName.external(name))
        let firewallChain = layout.chain(NFTablesChainName.firewall(name))
        var elements: [String: [Element]] = [:]
        func add(_ set: NFTSet, _ element: Element) { elements[set.name, default: []].append(element) }
        func block(_ fate: TrafficFate?) -> Verdict? {
            switch fate {
            case .reject: .goto(layout.rejectChain.name)
            case .drop: .drop
            case .forward, nil: nil
            }
        }

        // Dispatch: what each address of the port leads to.
        for ip in plan.clusterIPs {
            let key = Element.Fields(Datum(ip), proto, port)
            if case .forward(let pool) = plan.clusterIPTraffic {
                add(layout.serviceIPs, Element(key, .verdict(.goto(NFTablesChainName.pool(pool, name)))))
            } else if let verdict = block(plan.clusterIPTraffic) {
                add(layout.noEndpointServices, Element(key, .verdict(verdict)))
            }
        }
        let externalBlock = block(plan.externalTraffic)
        let externalEntries = plan.externalIPs.map { ($0, externalChain.name) }
            + plan.loadBalancerIPs.map { ($0, plan.firewall != nil ? firewallChain.name : externalChain.name) }
        for (ip, chain) in externalEntries {
            let key = Element.Fields(Datum(ip), proto, port)
            if plan.externalStage != nil { add(layout.serviceIPs, Element(key, .verdict(.goto(chain)))) }
            if let externalBlock { add(layout.noEndpointServices, Element(key, .verdict(externalBlock))) }
        }
        if let nodePort = plan.nodePort {
            let key = Element.Fields(proto, .port(nodePort))
            if plan.externalStage != nil {
                add(layout.serviceNodePorts, Element(key, .verdict(.goto(externalChain.name))))
            }
            if let externalBlock { add(layout.noEndpointNodePorts, Element(key, .verdict(externalBlock))) }
        }

        // Pools: a chain each, its endpoints in the data maps.
        var chains: [(Chain, [Rule])] = []
        for pool in [EndpointPool.cluster, .local] {
            guard let slots = pools[pool], !slots.slots.isEmpty else { continue }
            let chain = layout.chain(NFTablesChainName.pool(pool, name))
            var rules: [Rule] = []
            if case .forward(pool) = plan.clusterIPTraffic {
                rules += Self.clusterIPMasquerade(plan, chain: chain, layout: layout)
            }
            rules += Self.selection(chain: chain, pool: slots, affinity: plan.affinityTimeout, plan: plan,
                                    layout: layout)
            chains.append((chain, rules))
            let map = layout.endpoints(shard: NFTablesLayout.shard(slots.id)).name
            var entries: [Element] = []
            entries.reserveCapacity(slots.slots.count)
            for (slot, endpoint) in slots.slots.enumerated() {
                let key = Element.Fields(.integer(NFTablesLayout.endpointKey(pool: slots.id, slot: slot)))
                entries.append(Element(key, .data(Element.Fields(Datum(endpoint.address), .port(endpoint.port)))))
            }
            elements[map, default: []] += entries
        }
        let hairpin = Self.hairpinAddresses(pools.endpoints)

        // The external stage, and the firewall in front of it.
        if let stage = plan.externalStage {
            var rules: [Rule] = []
            let mark: [Expression] = .jump(layout.markForMasquerade.name)
            if stage.masqueradeAll { rules.append(Rule(in: externalChain, mark)) }
            if let shortCircuit = stage.shortCircuit, pools[.cluster] != nil {
                let cluster = NFTablesChainName.cluster(name)
                if let cidr = shortCircuit.podCIDR {
                    rules.append(Rule(in: externalChain, .match(layout.saddr, inPrefix: Datum(cidr.network),
                                                                length: cidr.prefixLength), .goto(cluster)))
                }
                rules.append(Rule(in: externalChain, Self.localSource, mark))
                rules.append(Rule(in: externalChain, Self.localSource, .goto(cluster)))
            }
            if case .forward(let pool) = plan.externalTraffic, pools[pool] != nil {
                rules.append(Rule(in: externalChain, .goto(NFTablesChainName.pool(pool, name))))
            }
            chains.append((externalChain, rules))
            if let firewall = plan.firewall {
                var rules = firewall.allowedSources.map { cidr in
                    Rule(in: firewallChain,
                         .match(layout.saddr, inPrefix: Datum(cidr.network), length: cidr.prefixLength),
                         .goto(externalChain.name))
                }
                rules.append(Rule(in: firewallChain, .drop))
                chains.append((firewallChain, rules))
            }
        }
        self.init(chains: chains, elements: elements, hairpin: hairpin)
    }

    /// The addresses of `endpoints` that can send a packet DNATed back to themselves through this node
    /// (`ProxyEndpoint.mayBeOnThisNode`), each once. kube-proxy's nftables mode writes the hairpin match
    /// for every endpoint; on a node of 5,000 Services × 10 endpoints spread over the cluster that is
    /// 50,000 elements for the hundred pods the node holds (its ipvs mode keeps only local ones too).
    static func hairpinAddresses(_ endpoints: [ProxyEndpoint]) -> [IPAddress] {
        // Nearly every pool of a large cluster has none here: no set, no sort.
        guard endpoints.contains(where: \.mayBeOnThisNode) else { return [] }
        return Set(endpoints.lazy.filter(\.mayBeOnThisNode).map(\.address)).sorted()
    }

    /// `fib saddr type local`: the packet comes from the node itself.
    static var localSource: [Expression] {
        [.fib(.saddr, result: .addressType, dreg: .reg1), .cmp(.eq, sreg: .reg1, data: u32(2))]
    }

    /// The masquerade decision for cluster IP traffic, at the top of the pool chain it forwards to
    /// (kube-proxy matches the cluster IP and port there, so external traffic passing is untouched).
    static func clusterIPMasquerade(_ plan: ServicePortPlan, chain: Chain, layout: NFTablesLayout) -> [Rule] {
        let mark: [Expression] = .jump(layout.markForMasquerade.name)
        return plan.clusterIPs.compactMap { ip in
            let address: [Expression] = ip.family == .ipv4 ? .match(ipDaddr: "\(ip)") : .match(ip6Daddr: "\(ip)")
            let destination = address + .match(thDport: plan.port)
            switch plan.clusterIPMasquerade {
            case .none: return nil
            case .all: return Rule(in: chain, destination, mark)
            case .outside(let cidr):
                return Rule(in: chain, destination, .match(layout.saddr, inPrefix: Datum(cidr.network),
                                                           length: cidr.prefixLength, negated: true), mark)
            }
        }
    }

    // MARK: Endpoint selection

    /// Where a key of `saddr . endpoint key` puts its second field, and a lookup of `endpoints-S`
    /// its port (after the address): the 4-byte unit after the address, named as the kernel dumps
    /// it (a 16-byte register where the unit starts one), so a rule reads back equal to what was written.
    static func afterAddress(_ layout: NFTablesLayout) -> Register { layout.family == .ipv4 ? .reg32(1) : .reg2 }

    /// `meta l4proto P dnat ip to numgen random mod N offset POOL<<16 map @endpoints-S`: the slot
    /// key into `reg1`, the map's `address . port` into `reg1` and the unit after the address.
    /// Only N is in the rule: which endpoints fill the slots is data. (nft needs the protocol match
    /// to accept a port from a map; binding a map makes the kernel check the map's elements, so a
    /// sync writes rules before it adds elements.)
    ///
    /// With ClientIP affinity the slot a client was given is remembered in `@affinity` as
    /// `saddr . key`. nft 1.0.6 can neither feed one map's result into another lookup
    /// (`ip saddr map @a map @b` is a syntax error) nor put a constant in a concatenation on the
    /// left (`327680 . ip saddr @a`: "Can't parse symbolic invalid expressions"), nor write a map's
    /// result into a set (`add @a { ip saddr : … map @b }`), so a remembered slot has one rule per
    /// slot, the key a constant `numgen random mod 1 offset KEY`:
    /// `ip saddr . KEY @affinity update @affinity { … } dnat ip to KEY map @endpoints-S`; and a
    /// client with no slot takes one by a cascade (`numgen random mod (N - i) 0`, the last always),
    /// uniform over the slots, that remembers it. A slot beyond a shrunk pool matches no rule until
    /// its entry expires; meanwhile that client is given a new one.
    static func selection(chain: Chain, pool: PoolSlots, affinity: Int?, plan: ServicePortPlan,
                          layout: NFTablesLayout) -> [Rule] {
        let proto: [Expression] = .match(l4proto: l4proto(plan.protocol))
        let map = layout.endpoints(shard: NFTablesLayout.shard(pool.id)).name
        let port = afterAddress(layout)
        let count = UInt32(pool.slots.count), base = NFTablesLayout.endpointKey(pool: pool.id, slot: 0)
        func dnat(_ key: Expression) -> [Expression] {
            [key, .lookup(set: map, sreg: .reg1, dreg: .reg1),
             .nat(.dnat, family: layout.nftFamily, addressMin: .reg1, portMin: port)]
        }
        guard let affinity else {
            return [Rule(in: chain, proto, dnat(.numgen(.random, modulus: count, offset: base, dreg: .reg1)))]
        }
        let saddr: Expression = layout.family == .ipv4
            ? .payload(base: .network, offset: 12, length: 4, dreg: .reg1)
            : .payload(base: .network, offset: 8, length: 16, dreg: .reg1)
        func key(_ slot: UInt32) -> Expression { .numgen(.random, modulus: 1, offset: base + slot, dreg: port) }
        func remember(_ operation: DynsetOperation, _ slot: UInt32) -> [Expression] {
            [saddr, key(slot), .dynset(set: layout.affinity.name, operation: operation, sregKey: .reg1,
                                       timeout: .seconds(affinity))]
        }
        func fixed(_ slot: UInt32) -> [Expression] {
            dnat(.numgen(.random, modulus: 1, offset: base + slot, dreg: .reg1))
        }
        var rules: [Rule] = (0..<count).map { slot in
            Rule(in: chain, proto, [saddr, key(slot), .lookup(set: layout.affinity.name, sreg: .reg1)],
                 remember(.update, slot), fixed(slot))
        }
        for slot in 0..<count {
            let draw: [Expression] = slot + 1 < count
                ? [.numgen(.random, modulus: count - slot, dreg: .reg1), .cmp(.eq, sreg: .reg1, data: u32(0))] : []
            rules.append(Rule(in: chain, proto, draw, remember(.add, slot), fixed(slot)))
        }
        return rules
    }

    static func l4proto(_ proto: TransportProtocol) -> L4Proto {
        switch proto {
        case .udp: .udp
        case .sctp: .sctp
        default: .tcp
        }
    }

    static func u32(_ value: UInt32) -> [UInt8] { withUnsafeBytes(of: value) { Array($0) } }
}

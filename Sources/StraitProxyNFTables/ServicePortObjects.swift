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

    static let none = ServicePortObjects(chains: [], elements: [:], hairpin: [])

    static func == (a: ServicePortObjects, b: ServicePortObjects) -> Bool {
        a.chains.map(\.0) == b.chains.map(\.0) && a.chains.map(\.1) == b.chains.map(\.1) && a.elements == b.elements
            && a.hairpin == b.hairpin
    }

    func hash(into hasher: inout Hasher) {
        hasher.combine(chains.map(\.0))
        hasher.combine(elements)
        hasher.combine(hairpin)
    }

    func rules(of chain: String) -> [Rule]? { chains.first { $0.0.name == chain }?.1 }
}

/// One endpoint pool of a port as the table holds it: a number the data maps key it by, and its
/// endpoints in slot order (slot i holds `slots[i]`).
struct PoolSlots: Sendable, Hashable {
    var id: UInt32
    var slots: [ProxyEndpoint]
}

extension ServicePortObjects {
    /// The objects of `plan`; `pools` holds the slots of each pool the plan has.
    init(_ plan: ServicePortPlan, pools: [EndpointPool: PoolSlots], layout: NFTablesLayout) {
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
            let key = [Datum(ip), proto, port]
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
            let key = [Datum(ip), proto, port]
            if plan.externalStage != nil { add(layout.serviceIPs, Element(key, .verdict(.goto(chain)))) }
            if let externalBlock { add(layout.noEndpointServices, Element(key, .verdict(externalBlock))) }
        }
        if let nodePort = plan.nodePort {
            let key: [Datum] = [proto, .port(nodePort)]
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
            rules += Self.selection(chain: chain, pool: slots, affinity: plan.affinityTimeout, layout: layout)
            chains.append((chain, rules))
            let shard = NFTablesLayout.shard(slots.id)
            var addresses: [Element] = [], ports: [Element] = []
            addresses.reserveCapacity(slots.slots.count)
            ports.reserveCapacity(slots.slots.count)
            for (slot, endpoint) in slots.slots.enumerated() {
                let key: [Datum] = [.mark(slots.id), .mark(UInt32(slot))]
                addresses.append(Element(key, .data([Datum(endpoint.address)])))
                ports.append(Element(key, .data([.port(endpoint.port)])))
            }
            elements[layout.endpointAddresses(shard: shard).name, default: []] += addresses
            elements[layout.endpointPorts(shard: shard).name, default: []] += ports
        }
        let hairpin = Set(pools.values.flatMap(\.slots).map(\.address)).sorted()

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

    /// Registers of the selection rules, in 32-bit units (a concatenation's fields sit side by side):
    /// the affinity key `pool . saddr` from 0, the endpoint key `pool . slot` at 7 and 8, the
    /// endpoint's port at 9 and its address in 12 to 15. Each is named as the kernel dumps it (a
    /// 16-byte register where the unit starts one: 0 is `reg1`, 8 is `reg3`, 12 is `reg4`), so a
    /// rule reads back equal to what was written.
    static let affinityKey = Register.reg1, poolKey = Register.reg32(7), slot = Register.reg3
    static let endpointPort = Register.reg32(9), endpointAddress = Register.reg4

    /// `dnat to (pool . numgen random mod N) map @endpoint-addresses-S : … map @endpoint-ports-S`. Only
    /// N is in the rule: which endpoints fill the slots is data. (Each chain looks the maps up
    /// itself: the kernel refuses a rule that reads a register an earlier rule wrote (ENODATA), so
    /// one shared DNAT chain cannot take the key from the service chain. Binding a map makes the
    /// kernel check the map's elements, so a sync writes rules before it adds elements.)
    ///
    /// With ClientIP affinity, first the client's remembered slot (`pool . saddr` in `@affinity`),
    /// refreshed while it still names an endpoint; else a random slot, remembered. The kernel refuses
    /// a packet-path delete from a map, so a slot left beyond a shrunk pool is replaced only once it
    /// expires (`add` does not refresh it); until then that client is spread at random.
    static func selection(chain: Chain, pool: PoolSlots, affinity: Int?, layout: NFTablesLayout) -> [Rule] {
        let lookups: [Expression] = [
            .immediate(dreg: poolKey, data: u32(pool.id)),
            .lookup(set: layout.endpointAddresses(shard: NFTablesLayout.shard(pool.id)).name, sreg: poolKey,
                    dreg: endpointAddress),
            .lookup(set: layout.endpointPorts(shard: NFTablesLayout.shard(pool.id)).name, sreg: poolKey,
                    dreg: endpointPort),
        ]
        let dnat: Expression = .nat(.dnat, family: layout.nftFamily, addressMin: endpointAddress, portMin: endpointPort)
        let random: Expression = .numgen(.random, modulus: UInt32(pool.slots.count), dreg: slot)
        guard let affinity else {
            return [Rule(table: chain.table, chain: chain.name, expressions: [random] + lookups + [dnat])]
        }
        let sourceKey: [Expression] = [
            .immediate(dreg: affinityKey, data: u32(pool.id)),
            layout.family == .ipv4
                ? .payload(base: .network, offset: 12, length: 4, dreg: .reg32(1))
                : .payload(base: .network, offset: 8, length: 16, dreg: .reg32(1)),
        ]
        func remember(_ operation: DynsetOperation) -> Expression {
            .dynset(set: layout.affinity.name, operation: operation, sregKey: affinityKey, sregData: slot,
                    timeout: .seconds(affinity))
        }
        let remembered: [Expression] = sourceKey + [.lookup(set: layout.affinity.name, sreg: affinityKey, dreg: slot)]
            + lookups + [remember(.update), dnat]
        let chosen: [Expression] = sourceKey + [random] + lookups + [remember(.add), dnat]
        return [Rule(table: chain.table, chain: chain.name, expressions: remembered),
                Rule(table: chain.table, chain: chain.name, expressions: chosen)]
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

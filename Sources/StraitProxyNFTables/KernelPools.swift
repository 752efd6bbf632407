import StraitModel
import StraitNFT
import StraitProxy

/// The endpoint pools a table already holds for the ports with chains of their own, read back at a
/// process's first full sync so that each keeps its number and its slots.
///
/// ClientIP affinity remembers a client's slot as `saddr . pool << 16 | slot` in `@affinity`. A
/// restarted proxy that numbered its pools afresh (the numbers come from a hash, the next free one on
/// a collision, so they depend on the order ports arrived in) or put the endpoints in plan order
/// would make those entries name another endpoint, or none. Read back, every client keeps its
/// endpoint across a restart, and the first full sync rewrites nothing that was right.
///
/// A pool chain's number is in its selection rules: `numgen … offset POOL << 16 | slot` followed by a
/// lookup in `@endpoints-S`. Its slots are that map's elements `POOL << 16 | slot : address . port`.
/// Equivalent: `nft list chain ip strait service-…` and `nft list map ip strait endpoints-S`.
struct KernelPools {
    private let layout: NFTablesLayout
    private let contents: TableContents
    /// Pool number → its slots' endpoints by slot, from the `endpoints-S` maps (built on first use).
    private var endpointMaps: [UInt32: [Int: ProxyEndpoint]]?

    init(_ contents: TableContents, layout: NFTablesLayout) {
        self.contents = contents
        self.layout = layout
    }

    /// The pools `plan`'s chains hold in the table, by pool; none for a plain port (it owns no chain).
    mutating func pools(of plan: ServicePortPlan) -> EndpointSlots.PortPools {
        var pools = EndpointSlots.PortPools()
        guard SharedShape.pool(of: plan, layout: layout) == nil else { return pools }
        for pool in [EndpointPool.cluster, .local] {
            guard let rules = contents.rules[NFTablesChainName.pool(pool, plan.name)],
                  let number = Self.poolNumber(in: rules.map(\.rule), layout: layout) else { continue }
            let bySlot = endpoints()[number] ?? [:]
            guard let last = bySlot.keys.max() else { continue }
            // A slot missing from the map (deleted by hand) holds no endpoint: the plan's take it.
            pools[pool] = PoolSlots(id: number, slots: (0...last).map { bySlot[$0] ?? Self.noEndpoint(layout) })
        }
        return pools
    }

    /// The pool number the selection rules look their slots up by, if they are Strait's.
    static func poolNumber(in rules: [Rule], layout: NFTablesLayout) -> UInt32? {
        for rule in rules {
            let expressions = rule.expressions
            for (index, expression) in expressions.enumerated().dropLast() {
                guard case .numgen(_, _, let offset, _) = expression,
                      case .lookup(let set, _, _, _) = expressions[index + 1],
                      set == layout.endpoints(shard: NFTablesLayout.shard(offset >> 16)).name else { continue }
                return offset >> 16
            }
        }
        return nil
    }

    private mutating func endpoints() -> [UInt32: [Int: ProxyEndpoint]] {
        if let endpointMaps { return endpointMaps }
        var maps: [UInt32: [Int: ProxyEndpoint]] = [:]
        for shard in 0..<NFTablesLayout.endpointShards {
            for element in contents.elements[layout.endpoints(shard: shard).name] ?? [] {
                guard element.key.count == 1, case .integer(let key) = element.key[0].value,
                      case .data(let data) = element.value, data.count == 2,
                      let address = data[0].address, case .port(let port) = data[1].value else { continue }
                maps[key >> 16, default: [:]][Int(key & 0xffff)] = ProxyEndpoint(address: address, port: port)
            }
        }
        endpointMaps = maps
        return maps
    }

    /// Stands in a slot the map lost: no plan has it, so `EndpointSlots.reslot` gives the slot away.
    private static func noEndpoint(_ layout: NFTablesLayout) -> ProxyEndpoint {
        ProxyEndpoint(address: layout.family == .ipv4 ? .v4(IPv4Address(0)) : .v6(IPv6Address(high: 0, low: 0)),
                      port: 0)
    }
}

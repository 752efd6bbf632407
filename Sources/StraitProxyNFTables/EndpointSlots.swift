import StraitModel
import StraitProxy

/// The numbers the data maps key each endpoint pool by, and the slot each endpoint holds, kept
/// from sync to sync: an endpoint that stays keeps its slot, a new one takes a free slot, so one
/// endpoint change is one element per map (and ClientIP affinity, which remembers slots, holds
/// for every client whose endpoint stayed).
struct EndpointSlots: Sendable {
    struct PoolKey: Hashable, Sendable {
        var name: ServicePortName
        var pool: EndpointPool
    }

    private(set) var pools: [PoolKey: PoolSlots] = [:]
    private var taken: Set<UInt32> = []

    /// The pools of `plan` with their slots, assigning numbers to new pools and freeing those of
    /// pools the plan no longer has.
    mutating func assign(_ plan: ServicePortPlan) -> [EndpointPool: PoolSlots] {
        var result: [EndpointPool: PoolSlots] = [:]
        for pool in [EndpointPool.cluster, .local] {
            let key = PoolKey(name: plan.name, pool: pool)
            let endpoints = plan.endpoints(of: pool)
            guard !endpoints.isEmpty else {
                release(key)
                continue
            }
            var current = pools[key] ?? PoolSlots(id: allocate(key), slots: [])
            current.slots = Self.reslot(current.slots, endpoints)
            pools[key] = current
            result[pool] = current
        }
        return result
    }

    /// The pools `name` holds now.
    func pools(of name: ServicePortName) -> [EndpointPool: PoolSlots] {
        var result: [EndpointPool: PoolSlots] = [:]
        for pool in [EndpointPool.cluster, .local] {
            if let slots = pools[PoolKey(name: name, pool: pool)] { result[pool] = slots }
        }
        return result
    }

    /// Frees both pools of a port that is gone.
    mutating func release(_ name: ServicePortName) {
        release(PoolKey(name: name, pool: .cluster))
        release(PoolKey(name: name, pool: .local))
    }

    private mutating func release(_ key: PoolKey) {
        if let pool = pools.removeValue(forKey: key) { taken.remove(pool.id) }
    }

    /// A number from the pool's hash, the next free one on a collision.
    private mutating func allocate(_ key: PoolKey) -> UInt32 {
        var id = UInt32(truncatingIfNeeded: NFTablesChainName.fnv1a(
            "\(key.name.namespace)/\(key.name.name)/\(key.name.port)/\(key.name.protocol.rawValue)/\(key.pool)"))
        while taken.contains(id) { id &+= 1 }
        taken.insert(id)
        return id
    }

    /// The new slot order: endpoints that stay keep their slot while it is still in range; the
    /// free slots take the rest, in order.
    static func reslot(_ old: [ProxyEndpoint], _ new: [ProxyEndpoint]) -> [ProxyEndpoint] {
        struct Address: Hashable { var address: IPAddress; var port: UInt16 }
        let wanted = Dictionary(new.map { (Address(address: $0.address, port: $0.port), $0) },
                                uniquingKeysWith: { first, _ in first })
        var slots = [ProxyEndpoint?](repeating: nil, count: wanted.count)
        var placed = Set<Address>()
        for (index, endpoint) in old.enumerated() where index < slots.count {
            let address = Address(address: endpoint.address, port: endpoint.port)
            if let fresh = wanted[address], !placed.contains(address) {
                slots[index] = fresh
                placed.insert(address)
            }
        }
        var rest = new.filter { placed.insert(Address(address: $0.address, port: $0.port)).inserted }.makeIterator()
        return slots.map { $0 ?? rest.next()! }
    }
}

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

    /// Pool numbers and slots share one 32-bit map key, 16 bits each (`NFTablesLayout.endpointKey`).
    static let maxPools = 1 << 16, maxSlots = 1 << 16

    /// The pools of `plan` with their slots, assigning numbers to new pools and freeing those of
    /// pools the plan no longer has. A pool beyond `maxSlots` endpoints uses its first `maxSlots`.
    mutating func assign(_ plan: ServicePortPlan) throws(PoolsExhausted) -> [EndpointPool: PoolSlots] {
        var result: [EndpointPool: PoolSlots] = [:]
        for pool in [EndpointPool.cluster, .local] {
            let key = PoolKey(name: plan.name, pool: pool)
            let endpoints = Array(plan.endpoints(of: pool).prefix(Self.maxSlots))
            guard !endpoints.isEmpty else {
                release(key)
                continue
            }
            var current: PoolSlots
            if let existing = pools[key] {
                current = existing
            } else {
                current = PoolSlots(id: try allocate(key), slots: [])
            }
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

    /// A 16-bit number from the pool's hash, the next free one on a collision.
    private mutating func allocate(_ key: PoolKey) throws(PoolsExhausted) -> UInt32 {
        guard taken.count < Self.maxPools else { throw PoolsExhausted(port: key.name) }
        let name = key.name
        var id = UInt32(truncatingIfNeeded: NFTablesChainName.fnv1a(
            "\(name.namespace)/\(name.name)/\(name.port)/\(name.protocol.rawValue)/\(key.pool)")) & 0xffff
        while taken.contains(id) { id = (id + 1) & 0xffff }
        taken.insert(id)
        return id
    }

    /// The new slot order: endpoints that stay keep their slot while it is still in range; the
    /// free slots take the rest, in order.
    static func reslot(_ old: [ProxyEndpoint], _ new: [ProxyEndpoint]) -> [ProxyEndpoint] {
        struct Address: Hashable { var address: IPAddress; var port: UInt16 }
        // A new pool (every pool of a first full sync): the endpoints in order, each address and port once.
        if old.isEmpty {
            var seen = Set<Address>(minimumCapacity: new.count)
            return new.filter { seen.insert(Address(address: $0.address, port: $0.port)).inserted }
        }
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

/// Every one of the 65,536 pool numbers is taken (`EndpointSlots.maxPools`): the port cannot be programmed.
struct PoolsExhausted: Error, CustomStringConvertible {
    var port: ServicePortName
    var description: String {
        "nftables: no endpoint pool number left for \(port.namespace)/\(port.name):\(port.port) "
            + "(\(EndpointSlots.maxPools) pools in use)"
    }
}

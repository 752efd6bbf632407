import StraitModel
import StraitProxy
import StraitSystem

/// The numbers the data maps key each endpoint pool by, and the slot each endpoint holds, kept
/// from sync to sync: an endpoint that stays keeps its slot, a new one takes a free slot, so one
/// endpoint change is one element per map (and ClientIP affinity, which remembers slots, holds
/// for every client whose endpoint stayed).
struct EndpointSlots: Sendable {
    /// A port's two pools, under one key: one lookup of the port's name per sync, not one per pool, and
    /// no dictionary per port.
    struct PortPools: Sendable {
        var cluster: PoolSlots?
        var local: PoolSlots?

        subscript(pool: EndpointPool) -> PoolSlots? {
            get { pool == .cluster ? cluster : local }
            set { if pool == .cluster { cluster = newValue } else { local = newValue } }
        }

        var isEmpty: Bool { cluster == nil && local == nil }

        /// The endpoints of both pools, the cluster pool's first.
        var endpoints: [ProxyEndpoint] { (cluster?.slots ?? []) + (local?.slots ?? []) }
    }

    private(set) var ports: [ServicePortName: PortPools] = [:]
    private var taken: Set<UInt32> = []

    /// Pool numbers and slots share one 32-bit map key, 16 bits each (`NFTablesLayout.endpointKey`).
    static let maxPools = 1 << 16, maxSlots = 1 << 16

    /// The pools of `plan` with their slots, assigning numbers to new pools and freeing those of
    /// pools the plan no longer has. A pool beyond `maxSlots` endpoints uses its first `maxSlots`.
    mutating func assign(_ plan: ServicePortPlan) throws(PoolsExhausted) -> PortPools {
        var result = PortPools()
        // One lookup of the name: the entry is changed in place, and removed only when it ends empty.
        try Self.assign(plan, into: &ports[plan.name, default: PortPools()], taken: &taken, result: &result)
        if result.isEmpty { ports[plan.name] = nil }
        return result
    }

    private static func assign(_ plan: ServicePortPlan, into port: inout PortPools, taken: inout Set<UInt32>,
                               result: inout PortPools) throws(PoolsExhausted) {
        for pool in [EndpointPool.cluster, .local] {
            let all = plan.endpoints(of: pool)
            guard !all.isEmpty else {
                if let gone = port[pool] { taken.remove(gone.id) }
                port[pool] = nil
                continue
            }
            let endpoints = all.count > maxSlots ? Array(all.prefix(maxSlots)) : all
            var current: PoolSlots
            if let existing = port[pool] {
                current = existing
            } else {
                current = PoolSlots(id: try allocate(plan.name, pool, taken: &taken), slots: [])
            }
            current.slots = reslot(current.slots, endpoints)
            port[pool] = current
            result[pool] = current
        }
    }

    /// Takes `pools`, read back from the table (`KernelPools`), as `name`'s before any pool is
    /// numbered, so they keep their numbers and slots. A number already taken is not taken twice:
    /// that pool is numbered afresh when its port is assigned.
    mutating func adopt(_ name: ServicePortName, _ pools: PortPools) {
        for pool in [EndpointPool.cluster, .local] {
            guard let slots = pools[pool], slots.slots.count <= Self.maxSlots, taken.insert(slots.id).inserted else {
                continue
            }
            ports[name, default: PortPools()][pool] = slots
        }
    }

    /// Room for `count` ports, so that a full sync does not grow the table as it goes.
    mutating func reserve(_ count: Int) {
        ports.reserveCapacity(count)
        taken.reserveCapacity(count)
    }

    /// The pools `name` holds now.
    func pools(of name: ServicePortName) -> PortPools { ports[name] ?? PortPools() }

    /// Frees both pools of a port that is gone.
    mutating func release(_ name: ServicePortName) {
        guard let port = ports.removeValue(forKey: name) else { return }
        if let cluster = port.cluster { taken.remove(cluster.id) }
        if let local = port.local { taken.remove(local.id) }
    }

    /// A 16-bit number from the pool's hash (FNV-1a of `namespace/name/port/protocol/pool`), the
    /// next free one on a collision.
    private static func allocate(_ name: ServicePortName, _ pool: EndpointPool,
                                 taken: inout Set<UInt32>) throws(PoolsExhausted) -> UInt32 {
        guard taken.count < maxPools else { throw PoolsExhausted(port: name) }
        var hash = FNV1a()
        hash.add(name.namespace)
        hash.add("/")
        hash.add(name.name)
        hash.add("/")
        hash.add(name.port)
        hash.add("/")
        hash.add(name.protocol.rawValue)
        hash.add(pool == .cluster ? "/cluster" : "/local")
        var id = UInt32(truncatingIfNeeded: hash.value) & 0xffff
        while taken.contains(id) { id = (id + 1) & 0xffff }
        taken.insert(id)
        return id
    }

    /// The new slot order: endpoints that stay keep their slot while it is still in range; the
    /// free slots take the rest, in order.
    static func reslot(_ old: [ProxyEndpoint], _ new: [ProxyEndpoint]) -> [ProxyEndpoint] {
        struct Address: Hashable { var address: IPAddress; var port: UInt16 }
        // A new pool (every pool of a first full sync): the endpoints in order, each address and port
        // once; nearly always they are, and the slots share the plan's array.
        if old.isEmpty {
            if new.count <= 16 {
                // Read in place (no copy of each endpoint), the port first.
                let unique = new.withUnsafeBufferPointer { endpoints in
                    for i in endpoints.indices {
                        for j in 0..<i where endpoints[j].port == endpoints[i].port
                            && endpoints[j].address == endpoints[i].address { return false }
                    }
                    return true
                }
                if unique { return new }
            }
            var seen = Set<Address>(minimumCapacity: new.count)
            let unique = new.filter { seen.insert(Address(address: $0.address, port: $0.port)).inserted }
            return unique.count == new.count ? new : unique
        }
        if old.count <= 16 && new.count <= 16 { return reslotSmall(old, new) }
        return reslotLarge(old, new)
    }

    /// `reslot` for pools of any size, by dictionary.
    static func reslotLarge(_ old: [ProxyEndpoint], _ new: [ProxyEndpoint]) -> [ProxyEndpoint] {
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

extension EndpointSlots {
    /// `reslot` for pools of a few endpoints (nearly all of them), by linear search: no dictionary
    /// or set for ten endpoints on every change.
    static func reslotSmall(_ old: [ProxyEndpoint], _ new: [ProxyEndpoint]) -> [ProxyEndpoint] {
        func same(_ a: ProxyEndpoint, _ b: ProxyEndpoint) -> Bool { a.address == b.address && a.port == b.port }
        // Each address and port once, the first of it in `new`.
        var wanted: [ProxyEndpoint] = []
        wanted.reserveCapacity(new.count)
        for endpoint in new where !wanted.contains(where: { same($0, endpoint) }) { wanted.append(endpoint) }
        var slots = [ProxyEndpoint?](repeating: nil, count: wanted.count)
        var placed = [Bool](repeating: false, count: wanted.count)
        for (index, endpoint) in old.enumerated() where index < slots.count {
            if let found = wanted.firstIndex(where: { same($0, endpoint) }), !placed[found] {
                slots[index] = wanted[found]
                placed[found] = true
            }
        }
        var rest = wanted.indices.lazy.filter { !placed[$0] }.map { wanted[$0] }.makeIterator()
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

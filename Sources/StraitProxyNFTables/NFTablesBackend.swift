import StraitModel
import StraitNFT
import StraitProxy

/// The nftables mode for one IP family: programs the table `strait` of family `ip` or `ip6`
/// through `StraitNFT`, one transaction per sync holding only the difference (kube-proxy's
/// nftables proxier, over netlink instead of the `nft` binary).
///
/// A partial sync diffs the changed ports against what the last sync committed; a full sync reads
/// the table back and repairs whatever differs from the desired state (a chain or element deleted
/// by hand comes back). Endpoints are data (the map `cluster-endpoints` for plain ports, which share
/// one chain per pool size — `SharedShape` — and the maps `endpoints-S` for ports with chains of their
/// own), so a changed endpoint is a data-only commit that the kernel applies without re-validating the
/// table, and with a handful of chains its cost does not grow with the number of Services. Rules and
/// verdict elements change only when a Service appears, goes, changes its addresses or fates, or its
/// endpoint count changes (the `numgen` modulus: for a plain port, its verdict element moves to another
/// shape chain).
public actor NFTablesBackend: ProxyBackend {
    public nonisolated let mode = ProxyMode.nftables
    public nonisolated let family: IPFamily
    private let layout: NFTablesLayout
    private let kernel: any NFTKernel
    private var state: NFTablesState
    private var slots = EndpointSlots()
    /// Set when a partial sync's commit failed after the state took its changes: the next sync is
    /// full (it rebuilds the state and repairs the table), whatever it is asked.
    private var stateIsAhead = false
    /// The last transaction committed (for tests): what the sync changed. Empty unless
    /// `keepsLastTransaction`: a full sync's transaction holds every element of the table.
    public private(set) var lastTransaction = Transaction()
    private let keepsLastTransaction: Bool

    /// `keepsLastTransaction`: keep each sync's transaction in `lastTransaction` (tests); the proxy
    /// does not, so that a full sync's elements are freed once committed.
    public init(family: IPFamily, options: ProxyOptions, kernel: any NFTKernel, keepsLastTransaction: Bool = true) {
        self.family = family
        self.layout = NFTablesLayout(family: family, options: options)
        self.state = NFTablesState(family: family)
        self.kernel = kernel
        self.keepsLastTransaction = keepsLastTransaction
    }

    /// The table this backend owns. Equivalent: `nft list table ip strait`.
    public nonisolated var table: Table { NFTablesLayout(family: family, options: ProxyOptions()).table }

    public func sync(from old: ServiceTable?, to new: ServiceTable) async throws {
        if let old, !stateIsAhead {
            try partialSync(from: old, to: new)
        } else {
            try fullSync(new)
        }
    }

    /// Deletes the table and everything in it. Equivalent: `nft delete table ip strait`.
    public func cleanup() async throws {
        state = NFTablesState(family: family)
        slots = EndpointSlots()
        stateIsAhead = true
        guard try kernel.list(layout.table) != nil else { return }
        var tx = Transaction()
        tx.delete(layout.table)
        try kernel.commit(tx)
        if keepsLastTransaction { lastTransaction = tx }
    }

    // MARK: Partial sync

    /// Renders only the changed ports, old and new (the old from the plan and pools the state kept),
    /// and commits their difference. The state and slots change in place (a copy to roll back to
    /// would cost a copy of every port's entry per change); a failed commit makes the next sync full.
    private func partialSync(from old: ServiceTable, to new: ServiceTable) throws {
        let (upserted, removed) = new.changedPorts(since: old)
        // The slots change from here: whatever fails next leaves the next sync full.
        stateIsAhead = true
        var updates: [PortUpdate] = []
        func committed(_ name: ServicePortName) -> ServicePortObjects? {
            state.plan(name).map { ServicePortObjects($0, pools: slots.pools(of: name), layout: layout) }
        }
        for name in removed {
            updates.append(PortUpdate(name: name, old: committed(name), new: nil))
            slots.release(name)
        }
        for entry in upserted {
            let old = committed(entry.name)
            guard let plan = entry.plan(for: family) else {
                slots.release(entry.name)
                updates.append(PortUpdate(name: entry.name, old: old, new: nil))
                continue
            }
            let objects = ServicePortObjects(plan, pools: try slots.assign(plan), layout: layout)
            updates.append(PortUpdate(name: entry.name, old: old, new: objects))
        }
        var diff = NFTablesDiff()
        let (unchangedSlots, portLayout) = (slots, layout)
        state.replace(updates, in: new, layout: layout, render: { name, plan in
            ServicePortObjects(plan, pools: unchangedSlots.pools(of: name), layout: portLayout)
        }, recording: &diff)
        let tx = diff.transaction(layout)
        try kernel.commit(tx)
        if keepsLastTransaction { lastTransaction = tx }
        stateIsAhead = false
    }

    // MARK: Full sync

    /// Renders every port into the desired table, reads the kernel's table back and commits what
    /// differs (everything, into an empty namespace).
    ///
    /// Ports are visited in the table's own order: sorting every name took as long as translating
    /// the ports (45 ms at 5,000). What depends on name order is settled apart: the chains of the
    /// ports that own some are created in name order, and a dispatch key two ports claim gets the
    /// shape elements of the first by name (`NFTablesState.shown`) once every port has claimed.
    ///
    /// The table is read first: a process's first full sync takes the pools the ports' chains hold
    /// (`KernelPools`), so a restart keeps every pool's number and slots, which affinity entries name.
    private func fullSync(_ new: ServiceTable) throws {
        // The state is rebuilt whole: the old one goes first (not two at once); should this sync
        // fail, the next is full again.
        stateIsAhead = true
        state = NFTablesState(family: family)
        var nextSlots = slots
        let listed = try kernel.list(layout.table)
        // A process's first full sync (no pools known yet) takes the pools the table holds.
        if nextSlots.ports.isEmpty, let listed {
            var kernelPools = KernelPools(listed, layout: layout)
            for entry in new.ports.values {
                guard let plan = entry.plan(for: family) else { continue }
                nextSlots.adopt(entry.name, kernelPools.pools(of: plan))
            }
        }
        var nextState = NFTablesState(family: family)
        nextState.reserve(new.ports.count, layout: layout)
        nextSlots.reserve(new.ports.count)
        var desired = DesiredTable(layout: layout)
        var slotCount = 0
        for entry in new.ports.values {
            // The plans are read in place, not copied out.
            entry.plans.withUnsafeBufferPointer { plans in
                for index in plans.indices where plans[index].family == family {
                    slotCount += SharedShape.slotCount(of: plans[index], layout: layout)
                }
            }
        }
        let shapeMap = NFTablesLayout.clusterEndpointsName
        // The plain ports' slots are written straight into one array, sized up front: one that doubled as
        // it filled would hold its old and new copy at once.
        var shapeElements: [Element] = []
        shapeElements.reserveCapacity(slotCount)
        var owners: [(name: ServicePortName, chains: [(Chain, [Rule])])] = []
        let dispatch = layout.serviceIPs.name
        var held = 0
        for entry in new.ports.values {
            guard let plan = entry.plan(for: family) else { continue }
            let pools = try nextSlots.assign(plan)
            if !pools.isEmpty { held += 1 }
            let objects = ServicePortObjects(plan, pools: pools, layout: layout,
                                             appendingShapeElementsTo: &shapeElements)
            desired.add(elementsOf: objects)
            if !objects.chains.isEmpty { owners.append((entry.name, objects.chains)) }
            nextState.record(entry.name, objects, layout: layout)
        }
        desired.add(shapeElements, to: shapeMap)
        shapeElements = []
        nextState.record(new)
        // Pools of ports that are gone give their numbers back (only a sync after a failed one has any).
        if nextSlots.ports.count > held {
            for name in nextSlots.ports.keys where new.ports[name]?.plan(for: family) == nil { nextSlots.release(name) }
        }
        owners.sort { $0.name < $1.name }
        for owner in owners { desired.add(chains: owner.chains) }
        owners = []
        // A key more than one port claims: every plain claimant's shape elements went in above; they go,
        // and those of the port shown for it (the first by name) come back.
        let contested = nextState.contestedKeys(dispatch)
        if !contested.isEmpty {
            desired.removeElements(from: [shapeMap]) { contested.contains(Element.Fields($0.key.prefix(3))) }
            for key in contested {
                guard let name = nextState.shown(dispatch, key), let plan = nextState.plan(name) else { continue }
                let objects = ServicePortObjects(plan, pools: nextSlots.pools(of: name), layout: layout)
                if let elements = objects.shapeGroups[key] { desired.add(elements, to: shapeMap) }
            }
        }
        desired.add(shapes: nextState.shapes.keys)
        desired.add(nextState.sharedElements(layout))

        let tx = desired.repair(listed)
        desired = DesiredTable(layout: layout)
        try kernel.commit(tx)
        if keepsLastTransaction { lastTransaction = tx }
        state = nextState
        slots = nextSlots
        stateIsAhead = false
    }
}

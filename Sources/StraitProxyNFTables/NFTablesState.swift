import StraitModel
import StraitNFT
import StraitProxy

/// What the table holds after the last successful commit, kept small: each port's plan, read from
/// the Service table that commit programmed (its objects are rebuilt from the plan and its
/// `EndpointSlots` pools when it changes, never stored), which
/// ports claim each key of the maps two ports may share (two Services may claim the same external
/// IP and port; the first by name shows, as the kernel holds one element per key), and how many
/// ports hold each endpoint address (the hairpin set has one element per address).
///
/// The endpoint data maps are keyed by pool number, which no two ports share: their elements are
/// diffed per port and not recorded here at all.
struct NFTablesState: Sendable {
    let family: IPFamily
    /// The Service table the state was last brought to, whose plans the kernel's table holds: the
    /// caller's own value (a persistent tree, shared), where a copy of every plan was 2.4 MB at 5,000
    /// Services and a dictionary of their names 0.6 MB.
    private var table = ServiceTable()
    /// Shared map name → key → the ports that want it, with the value each wants (the key is the
    /// dictionary's: a claim holds no copy of it; the shared maps' elements have no timeout).
    private var claims: [String: [Element.Fields: Claims]] = [:]
    /// Endpoint address → the number of ports whose pools hold it.
    private var hairpin: [IPAddress: Int] = [:]
    /// Pool size → the number of plain ports going to its shape chain (`SharedShape`): the chain
    /// exists while this is above zero.
    private(set) var shapes: [UInt32: Int] = [:]

    init(family: IPFamily) { self.family = family }

    /// The plan of `name` the table holds.
    func plan(_ name: ServicePortName) -> ServicePortPlan? { table.ports[name]?.plan(for: family) }

    /// The ports claiming one key: nearly always one, so that case holds no dictionary.
    enum Claims: Sendable {
        case one(ServicePortName, ElementValue?)
        case many([ServicePortName: ElementValue?])

        /// The value the kernel shows: the first port's by name.
        var visible: ElementValue? {
            switch self {
            case .one(_, let value): value
            case .many(let claims): claims.min { $0.key < $1.key }!.value
            }
        }

        func adding(_ name: ServicePortName, _ value: ElementValue?) -> Claims {
            switch self {
            case .one(let other, _) where other == name: return .one(name, value)
            case .one(let other, let otherValue): return .many([other: otherValue, name: value])
            case .many(var claims):
                claims[name] = value
                return .many(claims)
            }
        }

        func removing(_ name: ServicePortName) -> Claims? {
            switch self {
            case .one(let other, _): return other == name ? nil : self
            case .many(var claims):
                claims[name] = nil
                if claims.count == 1, let only = claims.first { return .one(only.key, only.value) }
                return claims.isEmpty ? nil : .many(claims)
            }
        }
    }

    /// The element the kernel shows for `key` in the shared map `set`.
    func visible(_ set: String, _ key: Element.Fields) -> Element? {
        claims[set]?[key].map { Element(key, $0.visible) }
    }

    /// The port whose element the kernel shows for `key` in the shared map `set`.
    func shown(_ set: String, _ key: Element.Fields) -> ServicePortName? {
        switch claims[set]?[key] {
        case .one(let name, _): name
        case .many(let claims): claims.keys.min()
        case nil: nil
        }
    }

    /// The keys of the shared map `set` that more than one port claims.
    func contestedKeys(_ set: String) -> Set<Element.Fields> {
        var keys: Set<Element.Fields> = []
        for (key, claim) in claims[set] ?? [:] { if case .many = claim { keys.insert(key) } }
        return keys
    }

    /// Every element of the shared maps and the hairpin set, by set (for a full sync).
    func sharedElements(_ layout: NFTablesLayout) -> [String: [Element]] {
        var elements = claims.mapValues { keys in keys.map { key, claims in Element(key, claims.visible) } }
        elements[layout.hairpin.name] = hairpin.keys.sorted().map(layout.hairpinElement)
        return elements
    }

    /// Replaces the objects of the given ports (`old` as the table holds them, `new` nil when the port
    /// is gone), the ports that changed from the state's table to `table`, which the state then stands
    /// for, and records in `diff` what the kernel must do to follow: elements whose shown value
    /// changed, chains added, rewritten or deleted.
    ///
    /// The shape elements of a dispatch key (`ServicePortObjects.shapeElements`) are those of the port shown
    /// for it in `service-ips`; `render` gives the objects of a port this sync does not change (from its plan)
    /// for when it becomes or stops being the one shown.
    mutating func replace(_ updates: [PortUpdate], in table: ServiceTable, layout: NFTablesLayout,
                          render: (ServicePortName, ServicePortPlan) -> ServicePortObjects,
                          recording diff: inout NFTablesDiff) {
        var touched: [String: Set<Element.Fields>] = [:]
        var touchedAddresses: Set<IPAddress> = []
        var touchedShapes: Set<UInt32> = []
        for update in updates {
            for objects in [update.old, update.new].compactMap({ $0 }) {
                for (set, elements) in objects.elements where layout.isShared(set) {
                    touched[set, default: []].formUnion(elements.map(\.key))
                }
                touchedAddresses.formUnion(objects.hairpin)
                if let shape = objects.shape { touchedShapes.insert(shape) }
            }
        }
        let shapesBefore = touchedShapes.filter { shapes[$0] != nil }
        let dispatch = layout.serviceIPs.name
        let byName = Dictionary(updates.map { ($0.name, $0) }, uniquingKeysWith: { _, last in last })
        var shapeKeys: Set<Element.Fields> = []
        for update in updates {
            for objects in [update.old, update.new].compactMap({ $0 }) {
                shapeKeys.formUnion(objects.shapeGroups.keys)
            }
        }
        let shownBefore = Dictionary(uniqueKeysWithValues: shapeKeys.map { ($0, shown(dispatch, $0)) })
        var before: [String: [Element.Fields: Element]] = [:]
        for (set, keys) in touched {
            for key in keys { before[set, default: [:]][key] = visible(set, key) }
        }
        let heldBefore = Set(touchedAddresses.filter { hairpin[$0] != nil })
        for update in updates {
            let old = update.old ?? .none, next = update.new ?? .none
            release(update.name, old, layout: layout)
            claim(update.name, next, layout: layout)
            diff.replaceChains(old: old.chains, new: next.chains)
            diff.replaceData(old: old.elements.filter { !layout.isShared($0.key) },
                             new: next.elements.filter { !layout.isShared($0.key) })
        }
        for (set, keys) in touched {
            for key in keys {
                let was = before[set]?[key] ?? nil, now = visible(set, key)
                guard was != now else { continue }
                if let was { diff.deleteElements[set, default: []].append(was) }
                if let now { diff.addElements[set, default: []].append(now) }
            }
        }
        // The shape elements of each dispatch key whose shown port may have changed, before and after.
        func shapeElements(_ name: ServicePortName?, _ key: Element.Fields, after: Bool) -> [String: [Element]] {
            guard let name else { return [:] }
            let objects: ServicePortObjects?
            if let update = byName[name] {
                objects = after ? update.new : update.old
            } else {
                objects = plan(name).map { render(name, $0) }
            }
            return objects?.shapeGroups[key].map { [NFTablesLayout.clusterEndpointsName: $0] } ?? [:]
        }
        for key in shapeKeys {
            let had = shapeElements(shownBefore[key] ?? nil, key, after: false)
            let wants = shapeElements(shown(dispatch, key), key, after: true)
            diff.replaceData(old: had, new: wants)
        }
        // A shape chain comes before the elements that go to it and goes after the last of them.
        for count in touchedShapes.sorted() {
            let was = shapesBefore.contains(count), now = shapes[count] != nil
            let chain = layout.shapeChain(count)
            if now && !was {
                diff.addChains.append(chain)
                diff.writeRules.append((chain, layout.shapeRules(count), false))
            }
            if was && !now { diff.deleteChains.append(chain) }
        }
        let hairpinSet = layout.hairpin.name
        for address in touchedAddresses {
            let was = heldBefore.contains(address), now = hairpin[address] != nil
            if was && !now { diff.deleteElements[hairpinSet, default: []].append(layout.hairpinElement(address)) }
            if now && !was { diff.addElements[hairpinSet, default: []].append(layout.hairpinElement(address)) }
        }
        self.table = table
    }

    /// Room for `count` ports and their dispatch keys, so that a full sync does not grow the tables as it goes.
    mutating func reserve(_ count: Int, layout: NFTablesLayout) {
        claims[layout.serviceIPs.name, default: [:]].reserveCapacity(count)
    }

    /// Records a port of a full sync (the state starts empty): its claims and addresses.
    mutating func record(_ name: ServicePortName, _ objects: ServicePortObjects, layout: NFTablesLayout) {
        claim(name, objects, layout: layout)
    }

    /// Records the table a full sync programmed, whose plans the recorded ports' objects are of.
    mutating func record(_ table: ServiceTable) { self.table = table }

    private mutating func claim(_ name: ServicePortName, _ objects: ServicePortObjects, layout: NFTablesLayout) {
        for (set, elements) in objects.elements where layout.isShared(set) {
            // Changed in place: one lookup of the set and one of the key.
            for element in elements {
                assert(element.timeout == nil, "an element of a shared map with a timeout: \(element)")
                claims[set, default: [:]][element.key].add(name, element.value)
            }
        }
        for address in objects.hairpin { hairpin[address, default: 0] += 1 }
        if let shape = objects.shape { shapes[shape, default: 0] += 1 }
    }

    private mutating func release(_ name: ServicePortName, _ objects: ServicePortObjects, layout: NFTablesLayout) {
        for (set, elements) in objects.elements where layout.isShared(set) {
            for element in elements { claims[set]?[element.key].remove(name) }
        }
        for address in objects.hairpin {
            let count = (hairpin[address] ?? 1) - 1
            hairpin[address] = count > 0 ? count : nil
        }
        if let shape = objects.shape {
            let count = (shapes[shape] ?? 1) - 1
            shapes[shape] = count > 0 ? count : nil
        }
    }
}

extension NFTablesState.Claims? {
    /// Adds `name`'s claim of the key with `value` (replacing an earlier one of it).
    mutating func add(_ name: ServicePortName, _ value: ElementValue?) {
        self = self?.adding(name, value) ?? .one(name, value)
    }

    /// Takes `name`'s claim of the key back; nil when no port claims it any more.
    mutating func remove(_ name: ServicePortName) { self = self?.removing(name) }
}

/// One port's change in a partial sync: its objects as the table holds them (nil: it was not
/// there), and as its new plan makes them (nil: it goes).
struct PortUpdate {
    var name: ServicePortName
    var old: ServicePortObjects?
    var new: ServicePortObjects?
}

/// The changes one sync makes, collected by kind and emitted in the one order the kernel accepts:
/// stale chains emptied, elements removed, chains created, rules written, elements added, chains
/// deleted (after every element and rule that pointed at them is gone), stale sets deleted.
struct NFTablesDiff: Sendable {
    var flushStaleChains: [Chain] = []
    var deleteElements: [String: [Element]] = [:]
    var addChains: [Chain] = []
    /// Chains whose rules are written: `flush` first when the chain had rules.
    var writeRules: [(chain: Chain, rules: [Rule], flush: Bool)] = []
    var addElements: [String: [Element]] = [:]
    var deleteChains: [Chain] = []
    var deleteSets: [NFTSet] = []

    /// The chain changes between a port's old and new chains.
    mutating func replaceChains(old: [(Chain, [Rule])], new: [(Chain, [Rule])]) {
        let oldRules = Dictionary(old.map { ($0.0.name, $0.1) }, uniquingKeysWith: { a, _ in a })
        let newNames = Set(new.map(\.0.name))
        for (chain, rules) in new {
            if let previous = oldRules[chain.name] {
                if previous != rules { writeRules.append((chain, rules, true)) }
            } else {
                addChains.append(chain)
                if !rules.isEmpty { writeRules.append((chain, rules, false)) }
            }
        }
        for (chain, _) in old.reversed() where !newNames.contains(chain.name) { deleteChains.append(chain) }
    }

    /// The element changes between a port's old and new elements of maps only it writes to.
    mutating func replaceData(old: [String: [Element]], new: [String: [Element]]) {
        for set in Set(old.keys).union(new.keys) {
            let had = Dictionary((old[set] ?? []).map { ($0.key, $0) }, uniquingKeysWith: { a, _ in a })
            let wants = Dictionary((new[set] ?? []).map { ($0.key, $0) }, uniquingKeysWith: { a, _ in a })
            for (key, element) in had where wants[key] != element {
                deleteElements[set, default: []].append(element)
            }
            for (key, element) in wants where had[key] != element {
                addElements[set, default: []].append(element)
            }
        }
    }

    func transaction(_ layout: NFTablesLayout) -> Transaction {
        var tx = Transaction()
        for chain in flushStaleChains { tx.flush(chain) }
        for (name, elements) in deleteElements.sorted(by: { $0.key < $1.key }) where !elements.isEmpty {
            // An element change names its set only (no types): no need to build the set's description.
            tx.delete(elements, from: NFTSet(table: layout.table, name: name, keyType: []))
        }
        for chain in addChains { tx.add(chain) }
        for (chain, rules, flush) in writeRules {
            if flush { tx.flush(chain) }
            for rule in rules { tx.add(rule) }
        }
        for (name, elements) in addElements.sorted(by: { $0.key < $1.key }) where !elements.isEmpty {
            tx.add(elements, toSet: name, in: layout.table)
        }
        for chain in deleteChains { tx.delete(chain) }
        for set in deleteSets { tx.delete(set) }
        return tx
    }
}

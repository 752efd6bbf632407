import StraitNFT

/// The whole table a full sync wants, and the transaction that turns what the kernel holds into it.
struct DesiredTable {
    let layout: NFTablesLayout
    /// Every chain with its rules, in creation order: the fixed chains, then each port's.
    private(set) var chains: [(Chain, [Rule])]
    private(set) var elements: [String: [Element]] = [:]

    init(layout: NFTablesLayout) {
        self.layout = layout
        chains = layout.fixedChains.map { ($0.chain, $0.rules) }
    }

    /// Adds one port's elements of the maps only it writes to (the shared maps' come from the state,
    /// once every port has claimed its keys).
    mutating func add(elementsOf objects: ServicePortObjects) {
        for (set, elements) in objects.elements where !layout.isShared(set) {
            self.elements[set, default: []] += elements
        }
    }

    /// Adds chains with their rules, after those already added.
    mutating func add(chains: [(Chain, [Rule])]) { self.chains += chains }

    /// Removes the elements of `sets` that `isRemoved` picks.
    mutating func removeElements(from sets: Set<String>, where isRemoved: (Element) -> Bool) {
        for set in sets { elements[set]?.removeAll(where: isRemoved) }
    }

    /// Adds the shape chains of the given pool sizes (`SharedShape`).
    mutating func add(shapes: some Sequence<UInt32>) {
        for count in shapes.sorted() { chains.append((layout.shapeChain(count), layout.shapeRules(count))) }
    }

    /// Adds elements of `set`; a set's first are taken as they are, not copied.
    mutating func add(_ elements: [Element], to set: String) {
        if self.elements[set] == nil { self.elements[set] = elements } else { self.elements[set]! += elements }
    }

    mutating func add(_ elements: [String: [Element]]) {
        for (set, elements) in elements { add(elements, to: set) }
    }

    /// The transaction from `actual` to this table. A missing table, or one whose sets or base
    /// chains are not what this version writes, is rebuilt whole (in the same transaction);
    /// otherwise only what differs changes: stale chains, sets and elements go, missing ones come,
    /// chains with other rules are rewritten.
    func repair(_ actual: TableContents?) -> Transaction {
        guard let actual, compatible(actual) else { return rebuild(replacing: actual) }
        var diff = NFTablesDiff()
        let wanted = Set(chains.map(\.0.name))
        for chain in actual.chains where !wanted.contains(chain.name) {
            diff.flushStaleChains.append(chain)
            diff.deleteChains.append(chain)
        }
        for (chain, rules) in chains {
            if actual.chain(chain.name) == nil {
                diff.addChains.append(chain)
                if !rules.isEmpty { diff.writeRules.append((chain, rules, false)) }
            } else if actual.rules(in: chain.name) != rules {
                diff.writeRules.append((chain, rules, true))
            }
        }
        let sets = Set(layout.sets.map(\.name))
        diff.deleteSets = actual.sets.filter { !sets.contains($0.name) }
        for set in layout.sets where !layout.dynamicSets.contains(set.name) {
            let have = Dictionary((actual.elements[set.name] ?? []).map { ($0.key, $0) },
                                  uniquingKeysWith: { a, _ in a })
            let want = Dictionary((elements[set.name] ?? []).map { ($0.key, $0) }, uniquingKeysWith: { a, _ in a })
            for (key, element) in have where want[key] != element {
                diff.deleteElements[set.name, default: []].append(element)
            }
            for (key, element) in want where have[key] != element {
                diff.addElements[set.name, default: []].append(element)
            }
        }
        return diff.transaction(layout)
    }

    /// Whether the kernel's table has exactly this version's sets and base chains.
    private func compatible(_ actual: TableContents) -> Bool {
        for set in layout.sets where actual.set(set.name) != set { return false }
        for (chain, _) in chains where chain.base != nil && actual.chain(chain.name) != chain { return false }
        return true
    }

    private func rebuild(replacing actual: TableContents?) -> Transaction {
        var tx = Transaction()
        if actual != nil { tx.delete(layout.table) }
        tx.add(layout.table)
        for set in layout.sets { tx.add(set) }
        for (chain, _) in chains { tx.add(chain) }
        for (_, rules) in chains { for rule in rules { tx.add(rule) } }
        for set in layout.sets {
            if let elements = elements[set.name], !elements.isEmpty { tx.add(elements, to: set) }
        }
        return tx
    }
}

import StraitNFT
import StraitProxy

/// What the table holds after the last successful commit, as the backend built it: every port's
/// objects, and for each key of a shared map the ports that want it (two Services may claim the
/// same external IP and port; the first by name shows, as the kernel holds one element per key).
struct NFTablesState: Sendable {
    private(set) var ports: [ServicePortName: ServicePortObjects] = [:]
    /// Set name → key → port → the element that port wants.
    private var owners: [String: [[Datum]: [ServicePortName: Element]]] = [:]

    /// The element the kernel shows for `key` in `set`.
    func visible(_ set: String, _ key: [Datum]) -> Element? {
        owners[set]?[key]?.min { $0.key < $1.key }?.value
    }

    /// Every element the sync owns, by set.
    var elements: [String: [Element]] {
        owners.mapValues { keys in keys.values.compactMap { $0.min { $0.key < $1.key }?.value } }
    }

    /// Replaces the objects of the given ports (nil: the port is gone) and records in `diff` what
    /// the kernel must do to follow: elements whose shown value changed, chains added, rewritten
    /// or deleted.
    mutating func replace(_ updates: [(ServicePortName, ServicePortObjects?)], recording diff: inout NFTablesDiff) {
        var touched: [String: Set<[Datum]>] = [:]
        for (name, new) in updates {
            for objects in [ports[name], new].compactMap({ $0 }) {
                for (set, elements) in objects.elements { touched[set, default: []].formUnion(elements.map(\.key)) }
            }
        }
        var before: [String: [[Datum]: Element]] = [:]
        for (set, keys) in touched {
            for key in keys { before[set, default: [:]][key] = visible(set, key) }
        }
        for (name, new) in updates {
            let old = ports[name] ?? .none
            let next = new ?? .none
            for (set, elements) in old.elements {
                for element in elements {
                    owners[set]?[element.key]?[name] = nil
                    if owners[set]?[element.key]?.isEmpty == true { owners[set]?[element.key] = nil }
                }
            }
            for (set, elements) in next.elements {
                for element in elements { owners[set, default: [:]][element.key, default: [:]][name] = element }
            }
            diff.replaceChains(old: old.chains, new: next.chains)
            ports[name] = new
        }
        for (set, keys) in touched {
            for key in keys {
                let was = before[set]?[key] ?? nil, now = visible(set, key)
                guard was != now else { continue }
                if let was { diff.deleteElements[set, default: []].append(was) }
                if let now { diff.addElements[set, default: []].append(now) }
            }
        }
    }
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

    func transaction(_ layout: NFTablesLayout) -> Transaction {
        var tx = Transaction()
        let sets = Dictionary(layout.sets.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        func set(_ name: String) -> NFTSet {
            sets[name] ?? NFTSet(table: layout.table, name: name, keyType: [.integer])
        }
        for chain in flushStaleChains { tx.flush(chain) }
        for (name, elements) in deleteElements.sorted(by: { $0.key < $1.key }) where !elements.isEmpty {
            tx.delete(elements, from: set(name))
        }
        for chain in addChains { tx.add(chain) }
        for (chain, rules, flush) in writeRules {
            if flush { tx.flush(chain) }
            for rule in rules { tx.add(rule) }
        }
        for (name, elements) in addElements.sorted(by: { $0.key < $1.key }) where !elements.isEmpty {
            tx.add(elements, to: set(name))
        }
        for chain in deleteChains { tx.delete(chain) }
        for set in deleteSets { tx.delete(set) }
        return tx
    }
}

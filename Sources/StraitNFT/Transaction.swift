/// Changes to nftables collected as values and applied all at once by `NFTConnection.commit`:
/// either every change takes effect or none does (the kernel's batch guarantee).
/// Equivalent: one `nft -f` file of `add`/`flush`/`delete` commands.
public struct Transaction: Sendable, Hashable {
    public private(set) var changes: [Change] = []

    public init() {}

    public var isEmpty: Bool { changes.isEmpty }

    // MARK: Add (creates, or leaves an existing object as is)

    public mutating func add(_ table: Table) { changes.append(.add(.table(table))) }
    public mutating func add(_ chain: Chain) { changes.append(.add(.chain(chain))) }
    public mutating func add(_ set: NFTSet) { changes.append(.add(.set(set))) }
    /// Appends the rule to its chain.
    public mutating func add(_ rule: Rule) { changes.append(.add(.rule(rule))) }
    /// Puts the rule first in its chain.
    public mutating func insert(_ rule: Rule) { changes.append(.insert(rule)) }
    /// Replaces the rule with `handle` in its chain.
    public mutating func replace(handle: UInt64, with rule: Rule) { changes.append(.replace(handle: handle, rule)) }
    public mutating func add(_ elements: [Element], to set: NFTSet) {
        changes.append(.add(.elements(SetReference(set), elements)))
    }
    public mutating func add(_ elements: [Element], toSet name: String, in table: Table) {
        changes.append(.add(.elements(SetReference(table: table.identity, name: name), elements)))
    }

    // MARK: Create (fails if the object exists)

    public mutating func create(_ table: Table) { changes.append(.create(.table(table))) }
    public mutating func create(_ chain: Chain) { changes.append(.create(.chain(chain))) }
    public mutating func create(_ set: NFTSet) { changes.append(.create(.set(set))) }

    // MARK: Flush (empties, keeps the object)

    /// Removes every rule from every chain and every element from every set of the table.
    public mutating func flush(_ table: Table) { changes.append(.flush(.table(table))) }
    /// Removes every rule of the chain.
    public mutating func flush(_ chain: Chain) { changes.append(.flush(.chain(chain))) }
    /// Removes every element of the set.
    public mutating func flush(_ set: NFTSet) { changes.append(.flush(.set(set))) }

    // MARK: Delete

    public mutating func delete(_ table: Table) { changes.append(.delete(.table(table))) }
    public mutating func delete(_ chain: Chain) { changes.append(.delete(.chain(chain))) }
    public mutating func delete(_ set: NFTSet) { changes.append(.delete(.set(set))) }
    public mutating func delete(_ elements: [Element], from set: NFTSet) {
        changes.append(.delete(.elements(SetReference(set), elements)))
    }
    /// Deletes the rule with `handle` (from `NFTConnection.list`) in `chain`.
    public mutating func deleteRule(handle: UInt64, in chain: Chain) {
        changes.append(.deleteRule(handle: handle, chain))
    }

    /// One change, in the order it was added.
    public enum Change: Sendable, Hashable {
        case add(Object)
        case create(Object)
        case insert(Rule)
        case replace(handle: UInt64, Rule)
        case flush(Object)
        case delete(Object)
        case deleteRule(handle: UInt64, Chain)
    }

    /// Any object a change can name.
    public enum Object: Sendable, Hashable {
        case table(Table)
        case chain(Chain)
        case set(NFTSet)
        case elements(SetReference, [Element])
        case rule(Rule)
    }
}

/// Names a set by table and name, for changes to its elements.
public struct SetReference: Sendable, Hashable, CustomStringConvertible {
    public var table: Table
    public var name: String

    public init(table: Table, name: String) {
        self.table = table.identity
        self.name = name
    }

    public init(_ set: NFTSet) { self.init(table: set.table, name: set.name) }

    public var description: String { "set \(name) in \(table)" }
}

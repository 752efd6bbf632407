import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// The kernel's nftables in memory, for rootless tests of code that commits transactions
/// (as knftables' `Fake` serves kube-proxy). It applies a transaction change by change to a copy
/// of its tables and keeps the copy only if every change succeeds, with the kernel's rules where
/// they matter to a caller: objects must exist before they are used or deleted (`ENOENT`), `create`
/// refuses an existing object (`EEXIST`), a chain or set still referenced by a rule or element
/// cannot be deleted (`EBUSY`), an element cannot change its value by `add` (`EEXIST`).
/// Errors name the change as `NFTConnection` names it. Handles are the fake's own numbers.
public final class FakeNFTKernel: NFTKernel {
    private let state = Mutex([Table: FakeTable]())
    /// Transactions committed successfully, in order (for tests that count or inspect them).
    private let log = Mutex([Transaction]())

    public init() {}

    public func commit(_ transaction: Transaction) throws(NFTError) {
        guard !transaction.isEmpty else { return }
        try state.withLock { tables throws(NFTError) in
            var working = tables
            for change in transaction.changes { try Self.apply(change, to: &working) }
            tables = working
        }
        log.withLock { $0.append(transaction) }
    }

    public func list(_ table: Table) throws(NFTError) -> TableContents? {
        state.withLock { $0[table.identity]?.contents }
    }

    public func tables(_ family: Family?) throws(NFTError) -> [Table] {
        state.withLock { tables in
            tables.values.filter { family == nil || $0.table.family == family }.map(\.table)
                .sorted { ($0.family.rawValue, $0.name) < ($1.family.rawValue, $1.name) }
        }
    }

    /// Every transaction committed so far.
    public var committed: [Transaction] { log.withLock { $0 } }

    // MARK: Applying one change

    private static func apply(_ change: Transaction.Change, to tables: inout [Table: FakeTable]) throws(NFTError) {
        switch change {
        case .add(let object), .create(let object):
            let exclusive = if case .create = change { true } else { false }
            try add(object, exclusive: exclusive, to: &tables)
        case .insert(let rule):
            let op = "insert rule into chain \(rule.chain) in \(rule.table)"
            try withTable(rule.table, op, &tables) { table, op throws(NFTError) in
                try table.addRule(rule, position: .first, op)
            }
        case .replace(let handle, let rule):
            let op = "replace rule \(handle) in chain \(rule.chain) in \(rule.table)"
            try withTable(rule.table, op, &tables) { table, op throws(NFTError) in
                try table.addRule(rule, position: .replacing(handle), op)
            }
        case .flush(let object):
            switch object {
            case .table(let table):
                try withTable(table, "flush \(table)", &tables) { table, _ throws(NFTError) in
                    for name in table.rules.keys { table.rules[name] = [] }
                }
            case .chain(let chain):
                try withTable(chain.table, "flush \(chain)", &tables) { table, op throws(NFTError) in
                    guard table.chainIndex(chain.name) != nil else { throw NFTError(operation: op, errno: ENOENT) }
                    table.rules[chain.name] = []
                }
            case .set(let set):
                try withTable(set.table, "flush \(set)", &tables) { table, op throws(NFTError) in
                    guard table.setIndex(set.name) != nil else { throw NFTError(operation: op, errno: ENOENT) }
                    table.elements[set.name] = [:]
                }
            case .elements, .rule: break
            }
        case .delete(let object):
            try delete(object, from: &tables)
        case .deleteRule(let handle, let chain):
            try withTable(chain.table, "delete rule \(handle) in \(chain)", &tables) { table, op throws(NFTError) in
                guard let index = table.rules[chain.name]?.firstIndex(where: { $0.handle == handle }) else {
                    throw NFTError(operation: op, errno: ENOENT)
                }
                table.rules[chain.name]!.remove(at: index)
            }
        }
    }

    private static func add(_ object: Transaction.Object, exclusive: Bool,
                            to tables: inout [Table: FakeTable]) throws(NFTError) {
        switch object {
        case .table(let table):
            if tables[table.identity] != nil {
                if exclusive { throw NFTError(operation: "add \(table)", errno: EEXIST) }
                return
            }
            tables[table.identity] = FakeTable(table: table)
        case .chain(let chain):
            let op = "add chain \(chain.name) to \(chain.table)"
            try withTable(chain.table, op, &tables) { table, op throws(NFTError) in
                if table.chainIndex(chain.name) != nil {
                    if exclusive { throw NFTError(operation: op, errno: EEXIST) }
                    return
                }
                table.chains.append(chain)
                table.rules[chain.name] = []
            }
        case .set(let set):
            let op = "add \(set.isMap ? "map" : "set") \(set.name) to \(set.table)"
            try withTable(set.table, op, &tables) { table, op throws(NFTError) in
                guard !set.keyType.isEmpty, !set.keyType.contains(.verdict) else {
                    throw NFTError(operation: op, errno: EINVAL, detail: "invalid key type")
                }
                if let index = table.setIndex(set.name) {
                    let existing = table.sets[index]
                    let same = existing.keyType == set.keyType && existing.valueType == set.valueType && existing.typeof == set.typeof
                        && existing.flags == set.flags && existing.timeout == set.timeout
                    if exclusive || !same { throw NFTError(operation: op, errno: EEXIST) }
                    return
                }
                table.sets.append(set)
                table.elements[set.name] = [:]
            }
        case .elements(let reference, let elements):
            let op = "add \(elements.count) elements to \(reference)"
            try withTable(reference.table, op, &tables) { table, op throws(NFTError) in
                try table.addElements(elements, to: reference.name, op)
            }
        case .rule(let rule):
            let op = "add rule to chain \(rule.chain) in \(rule.table)"
            try withTable(rule.table, op, &tables) { table, op throws(NFTError) in
                try table.addRule(rule, position: .last, op)
            }
        }
    }

    private static func delete(_ object: Transaction.Object, from tables: inout [Table: FakeTable]) throws(NFTError) {
        switch object {
        case .table(let table):
            guard tables.removeValue(forKey: table.identity) != nil else {
                throw NFTError(operation: "delete \(table)", errno: ENOENT)
            }
        case .chain(let chain):
            try withTable(chain.table, "delete \(chain)", &tables) { table, op throws(NFTError) in
                guard let index = table.chainIndex(chain.name) else { throw NFTError(operation: op, errno: ENOENT) }
                // The kernel removes the chain's own rules with it, but not what others hold.
                var without = table
                without.rules[chain.name] = []
                if without.referencesChain(chain.name) { throw NFTError(operation: op, errno: EBUSY) }
                table.chains.remove(at: index)
                table.rules[chain.name] = nil
            }
        case .set(let set):
            try withTable(set.table, "delete \(set)", &tables) { table, op throws(NFTError) in
                guard let index = table.setIndex(set.name) else { throw NFTError(operation: op, errno: ENOENT) }
                if table.referencesSet(set.name) { throw NFTError(operation: op, errno: EBUSY) }
                table.sets.remove(at: index)
                table.elements[set.name] = nil
            }
        case .elements(let reference, let elements):
            let op = "delete \(elements.count) elements from \(reference)"
            try withTable(reference.table, op, &tables) { table, op throws(NFTError) in
                guard table.setIndex(reference.name) != nil else { throw NFTError(operation: op, errno: ENOENT) }
                for element in elements {
                    guard table.elements[reference.name]?.removeValue(forKey: element.key) != nil else {
                        throw NFTError(operation: op, errno: ENOENT, detail: "no element \(element) in \(reference)")
                    }
                }
            }
        case .rule(let rule):
            throw NFTError(operation: "delete \(rule)", errno: EINVAL, detail: "rules are deleted by handle")
        }
    }

    private static func withTable(_ table: Table, _ op: String, _ tables: inout [Table: FakeTable],
                                  _ body: (inout FakeTable, String) throws(NFTError) -> Void) throws(NFTError) {
        guard var contents = tables[table.identity] else { throw NFTError(operation: op, errno: ENOENT) }
        try body(&contents, op)
        tables[table.identity] = contents
    }
}

/// One table of the fake: what `TableContents` shows, kept in forms quick to change.
struct FakeTable {
    var table: Table
    var chains: [Chain] = []
    var sets: [NFTSet] = []
    /// Elements of each set by key: a key is in a set at most once.
    var elements: [String: [Element.Fields: Element]] = [:]
    var rules: [String: [ListedRule]] = [:]
    var nextHandle: UInt64 = 1

    init(table: Table) { self.table = table }

    func chainIndex(_ name: String) -> Int? { chains.firstIndex { $0.name == name } }
    func setIndex(_ name: String) -> Int? { sets.firstIndex { $0.name == name } }

    var contents: TableContents {
        TableContents(table: table, chains: chains, sets: sets,
                      elements: elements.mapValues { Array($0.values) },
                      rules: rules.filter { !$0.value.isEmpty })
    }

    enum Position { case first, last, replacing(UInt64) }

    mutating func addRule(_ rule: Rule, position: Position, _ op: String) throws(NFTError) {
        guard chainIndex(rule.chain) != nil else { throw NFTError(operation: op, errno: ENOENT) }
        for target in Self.chainsReferenced(by: rule.expressions) where chainIndex(target) == nil {
            throw NFTError(operation: op, errno: ENOENT, detail: "no chain \(target) in \(table)")
        }
        for set in Self.setsReferenced(by: rule.expressions) where setIndex(set) == nil {
            throw NFTError(operation: op, errno: ENOENT, detail: "no set \(set) in \(table)")
        }
        var listed = ListedRule(handle: nextHandle, rule: rule)
        var list = rules[rule.chain] ?? []
        switch position {
        case .first: list.insert(listed, at: 0)
        case .last: list.append(listed)
        case .replacing(let handle):
            guard let index = list.firstIndex(where: { $0.handle == handle }) else {
                throw NFTError(operation: op, errno: ENOENT)
            }
            listed.handle = handle
            list[index] = listed
        }
        if case .replacing = position {} else { nextHandle += 1 }
        rules[rule.chain] = list
    }

    mutating func addElements(_ added: [Element], to name: String, _ op: String) throws(NFTError) {
        guard let index = setIndex(name) else { throw NFTError(operation: op, errno: ENOENT) }
        let set = sets[index]
        for element in added {
            guard element.key.count == set.keyType.count else {
                throw NFTError(operation: op, errno: EINVAL, detail: "key of \(set.keyType.count) fields in \(element)")
            }
            switch (element.value, set.isMap ? set.valueType.first : nil) {
            case (nil, nil): break
            case (.verdict(let verdict)?, .verdict?):
                if let chain = verdict.chain, chainIndex(chain) == nil {
                    throw NFTError(operation: op, errno: ENOENT, detail: "no chain \(chain) in \(table)")
                }
            case (.data?, let type?) where type != .verdict: break
            default:
                throw NFTError(operation: op, errno: EINVAL, detail: "value of \(element) does not fit \(set)")
            }
            if let existing = elements[name]?[element.key] {
                guard existing.value == element.value else { throw NFTError(operation: op, errno: EEXIST) }
                continue
            }
            elements[name, default: [:]][element.key] = element
        }
    }

    /// Whether any rule or verdict element jumps or goes to `chain`.
    func referencesChain(_ chain: String) -> Bool {
        for list in rules.values {
            for listed in list where Self.chainsReferenced(by: listed.rule.expressions).contains(chain) { return true }
        }
        for set in sets where set.dataType == .verdict {
            for element in (elements[set.name] ?? [:]).values {
                if case .verdict(let verdict)? = element.value, verdict.chain == chain { return true }
            }
        }
        return false
    }

    /// Whether any rule looks up or updates the named set.
    func referencesSet(_ set: String) -> Bool {
        rules.values.contains { $0.contains { Self.setsReferenced(by: $0.rule.expressions).contains(set) } }
    }

    static func chainsReferenced(by expressions: [Expression]) -> [String] {
        expressions.flatMap { expression -> [String] in
            switch expression {
            case .verdict(let verdict): verdict.chain.map { [$0] } ?? []
            case .lookupAnonymous(let set, _, _):
                set.elements.compactMap { element in
                    if case .verdict(let verdict)? = element.value { verdict.chain } else { nil }
                }
            default: []
            }
        }
    }

    static func setsReferenced(by expressions: [Expression]) -> [String] {
        expressions.compactMap { expression in
            switch expression {
            case .lookup(let set, _, _, _), .dynset(let set, _, _, _, _): set
            default: nil
            }
        }
    }
}

import StraitNFT

/// An nftables table of strait-cni's own in which each pod attachment owns its chains, reached
/// through verdict maps from dispatch rules in the base chains. Adding an attachment adds its
/// chains and map elements in one batch; removing it deletes them in one batch. A clash on a map
/// element (two pods claiming one host IP, protocol and port) fails the ADD instead of silently
/// taking over.
///
/// Equivalent (hostPort):
///
///     table ip strait-hostport {
///         map hostports-ip { type ipv4_addr . inet_proto . inet_service : verdict; }
///         map hostports { type inet_proto . inet_service : verdict; }
///         chain prerouting { type nat hook prerouting priority dstnat;
///             fib daddr type local ip daddr . meta l4proto . th dport vmap @hostports-ip
///             fib daddr type local meta l4proto . th dport vmap @hostports }
///         chain hp-0123456789ab { meta l4proto tcp th dport 8080 dnat to 10.244.1.5:80 }
///     }
struct AttachmentNATTable {
    /// A base chain of the table and its dispatch rules (each an expression list).
    struct Hook {
        var name: String
        var hook: StraitNFT.Hook
        var priority: Int32
        var rules: [[Expression]]
    }

    /// One map element of an attachment: the key in `map` that leads to its chain `chain` (a suffix).
    struct Entry: Hashable {
        var map: String
        var key: [Datum]
        var chain: String = ""
    }

    let table: Table
    let maps: [NFTSet]
    let hooks: [Hook]
    /// The attachment chains' name prefix ("hp-" → `hp-0123456789ab`, `hp-0123456789ab-snat`).
    let chainPrefix: String
    /// What the CNI error says failed.
    let purpose: String

    func chainName(_ key: AttachmentKey, _ suffix: String = "") -> String {
        chainPrefix + hostVethName(for: key).dropFirst(2) + suffix
    }

    /// Adds the attachment's chains (suffix → rules) and the map entries that lead to them.
    func add(_ key: AttachmentKey, chains: [String: [[Expression]]], entries: [Entry]) throws(CNIError) {
        try ensureTable()
        var transaction = Transaction()
        for (suffix, rules) in chains.sorted(by: { $0.key < $1.key }) {
            let chain = Chain(table: table, name: chainName(key, suffix))
            transaction.add(chain)
            for rule in rules { transaction.add(Rule(table: table, chain: chain.name, expressions: rule)) }
        }
        for map in maps {
            let mine = entries.filter { $0.map == map.name }
            if !mine.isEmpty { transaction.add(mine.map { Element($0.key, .verdict(.goto(chainName(key, $0.chain)))) }, to: map) }
        }
        try commit(transaction, "add \(purpose) of \(key.containerID)/\(key.ifname)")
    }

    /// One chain, one map: the common case.
    func add(_ key: AttachmentKey, rules: [[Expression]], keys: [[Datum]]) throws(CNIError) {
        try add(key, chains: ["": rules], entries: keys.map { Entry(map: maps[0].name, key: $0) })
    }

    /// Removes the attachment's map entries and chains; already gone is fine (a repeated DEL).
    func remove(_ key: AttachmentKey, entries: [Entry], chains: [String] = [""]) throws(CNIError) {
        var transaction = Transaction()
        for map in maps {
            let mine = entries.filter { $0.map == map.name }
            if !mine.isEmpty { transaction.delete(mine.map { Element($0.key, .verdict(.goto(chainName(key, $0.chain)))) }, from: map) }
        }
        for suffix in chains { transaction.delete(Chain(table: table, name: chainName(key, suffix))) }
        do throws(CNIError) {
            try commit(transaction, "remove \(purpose) of \(key.containerID)/\(key.ifname)")
        } catch {
            guard chains.contains(where: { hasChain(chainName(key, $0)) }) else { return }
            throw error
        }
    }

    func remove(_ key: AttachmentKey, keys: [[Datum]]) throws(CNIError) {
        try remove(key, entries: keys.map { Entry(map: maps[0].name, key: $0) })
    }

    /// Creates the table with its maps and dispatch chains, unless it exists. `create` fails on an
    /// existing table, so two ADDs racing here cannot add the dispatch rules twice.
    private func ensureTable() throws(CNIError) {
        if hasChain(hooks[hooks.count - 1].name) { return }
        var transaction = Transaction()
        transaction.create(table)
        for map in maps { transaction.add(map) }
        for hook in hooks {
            let chain = Chain(table: table, name: hook.name, base: BaseChain(type: .nat, hook: hook.hook, priority: hook.priority))
            transaction.add(chain)
            for rule in hook.rules { transaction.add(Rule(table: table, chain: chain.name, expressions: rule)) }
        }
        do throws(CNIError) { try commit(transaction, "create table \(table.family) \(table.name)") } catch {
            guard !hasChain(hooks[hooks.count - 1].name) else { return }
            throw error
        }
    }

    private func commit(_ transaction: Transaction, _ what: String) throws(CNIError) {
        do {
            try NFTConnection().commit(transaction)
        } catch {
            throw CNIError(purpose == "masquerade" ? .kernelFailure : .portMappingFailure, "\(what) failed", details: "\(error)")
        }
    }

    private func hasChain(_ name: String) -> Bool {
        guard let connection = try? NFTConnection(), let listing = try? connection.list(table) else { return false }
        return listing.chains.contains { $0.name == name }
    }
}

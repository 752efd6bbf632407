import StraitNFT

/// An nftables table of strait-cni's own in which each pod attachment owns one chain, reached
/// through a verdict map from one dispatch rule per base chain. Adding an attachment adds its chain
/// and map elements in one batch; removing it deletes them in one batch. A clash on a map element
/// (two pods claiming one host port) fails the ADD instead of silently taking over.
///
/// Equivalent (hostPort):
///
///     table ip strait-hostport {
///         map hostports { type inet_proto . inet_service : verdict; }
///         chain prerouting { type nat hook prerouting priority dstnat; fib daddr type local meta l4proto . th dport vmap @hostports }
///         chain hp-0123456789ab { meta l4proto tcp th dport 8080 dnat to 10.244.1.5:80 }
///     }
struct AttachmentNATTable {
    /// A base chain of the table and the rule in it that dispatches through the map.
    struct Hook {
        var name: String
        var hook: StraitNFT.Hook
        var priority: Int32
        var dispatch: [[Expression]]
    }

    let table: Table
    let map: NFTSet
    let hooks: [Hook]
    /// The attachment chains' name prefix ("hp-" → `hp-0123456789ab`).
    let chainPrefix: String
    /// What the CNI error says failed.
    let purpose: String

    func chainName(_ key: AttachmentKey) -> String { chainPrefix + hostVethName(for: key).dropFirst(2) }

    /// Adds the attachment's chain with `rules` (each a rule's expressions) and the map elements,
    /// keyed by `keys`, that lead to it.
    func add(_ key: AttachmentKey, rules: [[Expression]], keys elementKeys: [[Datum]]) throws(CNIError) {
        try ensureTable()
        let chain = Chain(table: table, name: chainName(key))
        var transaction = Transaction()
        transaction.add(chain)
        for rule in rules { transaction.add(Rule(table: table, chain: chain.name, expressions: rule)) }
        transaction.add(elementKeys.map { Element($0, .verdict(.goto(chain.name))) }, to: map)
        try commit(transaction, "add \(purpose) of \(key.containerID)/\(key.ifname)")
    }

    /// Removes the attachment's map elements and chain; already gone is fine (a repeated DEL).
    func remove(_ key: AttachmentKey, keys elementKeys: [[Datum]]) throws(CNIError) {
        var transaction = Transaction()
        transaction.delete(elementKeys.map { Element($0, .verdict(.goto(chainName(key)))) }, from: map)
        transaction.delete(Chain(table: table, name: chainName(key)))
        do throws(CNIError) {
            try commit(transaction, "remove \(purpose) of \(key.containerID)/\(key.ifname)")
        } catch {
            guard hasChain(chainName(key)) else { return }
            throw error
        }
    }

    /// Creates the table with its map and dispatch chains, unless it exists. `create` fails on an
    /// existing table, so two ADDs racing here cannot add the dispatch rules twice.
    private func ensureTable() throws(CNIError) {
        if hasChain(hooks[0].name) { return }
        var transaction = Transaction()
        transaction.create(table)
        transaction.add(map)
        for hook in hooks {
            let chain = Chain(table: table, name: hook.name, base: BaseChain(type: .nat, hook: hook.hook, priority: hook.priority))
            transaction.add(chain)
            transaction.add(Rule(table: table, chain: chain.name, expressions: hook.dispatch.flatMap { $0 }))
        }
        do throws(CNIError) { try commit(transaction, "create table \(table.family) \(table.name)") } catch {
            guard !hasChain(hooks[0].name) else { return }
            throw error
        }
    }

    private func commit(_ transaction: Transaction, _ what: String) throws(CNIError) {
        do {
            try NFTConnection().commit(transaction)
        } catch {
            throw CNIError(.portMappingFailure, "\(what) failed", details: "\(error)")
        }
    }

    private func hasChain(_ name: String) -> Bool {
        guard let connection = try? NFTConnection(), let listing = try? connection.list(table) else { return false }
        return listing.chains.contains { $0.name == name }
    }
}

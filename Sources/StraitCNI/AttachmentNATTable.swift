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
    /// What the CNI error says failed, and its code.
    let purpose: String
    let failure: CNIErrorCode

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
            if !mine.isEmpty { transaction.add(mine.map { element($0, of: key) }, to: map) }
        }
        try commit(transaction, "add \(purpose) of \(key.containerID)/\(key.ifname)")
    }

    private func element(_ entry: Entry, of key: AttachmentKey) -> Element {
        Element(entry.key, .verdict(.goto(chainName(key, entry.chain))))
    }

    /// One chain, one map: the common case.
    func add(_ key: AttachmentKey, rules: [[Expression]], keys: [[Datum]]) throws(CNIError) {
        try add(key, chains: ["": rules], entries: keys.map { Entry(map: maps[0].name, key: $0) })
    }

    /// Removes the attachment's map entries and chains; already gone is fine (a repeated DEL, or a
    /// table an older strait-cni laid out with fewer maps): when the one batch fails, what is still
    /// there is removed in a second.
    func remove(_ key: AttachmentKey, entries: [Entry], chains: [String] = [""]) throws(CNIError) {
        do throws(CNIError) {
            try commit(removal(key, entries, chains), "remove \(purpose) of \(key.containerID)/\(key.ifname)")
        } catch {
            guard let connection = try? NFTConnection(), let listing = try? connection.list(table) else { return }
            // Only elements that lead to this attachment's chains: an equal key of another pod stays.
            let present = entries.filter { entry in
                (listing.elements[entry.map] ?? []).contains {
                    $0.key.elementsEqual(entry.key) && $0.value == .verdict(.goto(chainName(key, entry.chain)))
                }
            }
            let chainsPresent = chains.filter { suffix in
                listing.chains.contains { $0.name == chainName(key, suffix) }
            }
            guard !present.isEmpty || !chainsPresent.isEmpty else { return }
            try commit(removal(key, present, chainsPresent), "remove \(purpose) of \(key.containerID)/\(key.ifname)")
        }
    }

    private func removal(_ key: AttachmentKey, _ entries: [Entry], _ chains: [String]) -> Transaction {
        var transaction = Transaction()
        for map in maps {
            let mine = entries.filter { $0.map == map.name }
            if !mine.isEmpty { transaction.delete(mine.map { element($0, of: key) }, from: map) }
        }
        for suffix in chains { transaction.delete(Chain(table: table, name: chainName(key, suffix))) }
        return transaction
    }

    func remove(_ key: AttachmentKey, keys: [[Datum]]) throws(CNIError) {
        try remove(key, entries: keys.map { Entry(map: maps[0].name, key: $0) })
    }

    /// Creates the table with its maps and dispatch chains, unless it exists. `create` fails on an
    /// existing table, so two ADDs racing here cannot add the dispatch rules twice. A table an older
    /// strait-cni made (without the last hook) gets the missing maps and chains, and its base chains'
    /// dispatch rules are replaced, in one batch; the attachments already in it keep working.
    private func ensureTable() throws(CNIError) {
        if hasChain(hooks[hooks.count - 1].name) { return }
        if hasChain(hooks[0].name) {
            var upgrade = Transaction()
            for map in maps { upgrade.add(map) }
            for hook in hooks {
                let chain = baseChain(hook)
                upgrade.add(chain)
                upgrade.flush(chain)
                for rule in hook.rules { upgrade.add(Rule(table: table, chain: chain.name, expressions: rule)) }
            }
            try commit(upgrade, "bring table \(table.family) \(table.name) up to date")
            return
        }
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

    private func baseChain(_ hook: Hook) -> Chain {
        Chain(table: table, name: hook.name, base: BaseChain(type: .nat, hook: hook.hook, priority: hook.priority))
    }

    private func commit(_ transaction: Transaction, _ what: String) throws(CNIError) {
        do {
            try NFTConnection().commit(transaction)
        } catch {
            throw CNIError(failure, "\(what) failed", details: "\(error)")
        }
    }

    private func hasChain(_ name: String) -> Bool {
        guard let connection = try? NFTConnection(), let listing = try? connection.list(table) else { return false }
        return listing.chains.contains { $0.name == name }
    }
}

import Foundation
import StraitNFT
import StraitTestSupport

/// Every packet-filtering rule a namespace's kernel holds, normalised so that two equal rule sets
/// compare equal whatever order or history made them: the iptables tables as `iptables-save` and
/// `ip6tables-save` print them (counters and comments stripped, chains sorted, each chain's rules in
/// their order), and every nftables table read back through StraitNFT (handles dropped, chains,
/// sets and elements as sets, each chain's rules in their order).
struct RuleSnapshot: Equatable {
    var iptables: [String: [String]]
    var nftables: [String: NFTTableShape]

    struct NFTTableShape: Equatable {
        var chains: Set<Chain>
        var sets: Set<NFTSet>
        var elements: [String: Set<Element>]
        var rules: [String: [Rule]]
    }

    /// Reads the rules of `namespace`. Equivalent: `ip netns exec NS iptables-save; nft list ruleset`.
    static func read(_ namespace: TestNamespace) throws -> RuleSnapshot {
        var iptables: [String: [String]] = [:]
        for tool in ["iptables-save", "ip6tables-save"] {
            for (table, lines) in normalised(try namespace.run([tool])) { iptables["\(tool) \(table)"] = lines }
        }
        let connection = try NFTConnection(namespace: namespace.name)
        var nftables: [String: NFTTableShape] = [:]
        // The iptables-nft tables hold xtables expressions; iptables-save reads those.
        for table in try connection.tables() where !iptablesTables.contains(table.name) {
            guard let contents = try connection.list(table) else { continue }
            nftables[table.description] = NFTTableShape(
                chains: Set(contents.chains), sets: Set(contents.sets),
                elements: contents.elements.mapValues { Set($0) },
                rules: contents.rules.mapValues { $0.map(\.rule) })
        }
        return RuleSnapshot(iptables: iptables, nftables: nftables)
    }

    static let iptablesTables: Set<String> = ["filter", "nat", "mangle", "raw", "security"]

    /// `iptables-save` output per table: chain declarations without counters, sorted, then each
    /// chain's rules in order, chains sorted by name.
    static func normalised(_ saved: String) -> [String: [String]] {
        var tables: [String: (chains: [String], rules: [String: [String]])] = [:]
        var table = ""
        for line in saved.split(separator: "\n").map(String.init) {
            if line.hasPrefix("#") || line == "COMMIT" { continue }
            if line.hasPrefix("*") {
                table = String(line.dropFirst())
                tables[table] = tables[table] ?? ([], [:])
            } else if line.hasPrefix(":") {
                // ":KUBE-SERVICES - [0:0]" → ":KUBE-SERVICES -"
                tables[table]!.chains.append(line.split(separator: " ").prefix(2).joined(separator: " "))
            } else if line.hasPrefix("-A ") {
                let chain = String(line.split(separator: " ")[1])
                tables[table]!.rules[chain, default: []].append(line)
            }
        }
        return tables.mapValues { shape in
            shape.chains.sorted() + shape.rules.keys.sorted().flatMap { shape.rules[$0]! }
        }
    }

    /// What differs from `other`, briefly (for a failure message).
    func difference(from other: RuleSnapshot) -> String {
        var parts: [String] = []
        for key in Set(iptables.keys).union(other.iptables.keys).sorted() where iptables[key] != other.iptables[key] {
            let mine = Set(iptables[key] ?? []), theirs = Set(other.iptables[key] ?? [])
            let extra = mine.subtracting(theirs).sorted().prefix(3)
            let missing = theirs.subtracting(mine).sorted().prefix(3)
            parts.append("\(key): \(mine.subtracting(theirs).count) lines more (\(extra.joined(separator: " | "))), "
                         + "\(theirs.subtracting(mine).count) fewer (\(missing.joined(separator: " | ")))")
        }
        for key in Set(nftables.keys).union(other.nftables.keys).sorted() where nftables[key] != other.nftables[key] {
            let mine = nftables[key], theirs = other.nftables[key]
            let sets = Set(mine?.elements.keys.map { $0 } ?? []).union(theirs?.elements.keys.map { $0 } ?? [])
            let changedSets = sets.filter { mine?.elements[$0] != theirs?.elements[$0] }.sorted()
            let chains = Set(mine?.rules.keys.map { $0 } ?? []).union(theirs?.rules.keys.map { $0 } ?? [])
            let changedChains = chains.filter { mine?.rules[$0] != theirs?.rules[$0] }.sorted()
            parts.append("\(key): elements differ in \(changedSets.prefix(5)), rules in \(changedChains.prefix(5))"
                         + (mine?.chains != theirs?.chains ? ", chains differ" : "")
                         + (mine?.sets != theirs?.sets ? ", sets differ" : ""))
        }
        return parts.joined(separator: "; ")
    }
}

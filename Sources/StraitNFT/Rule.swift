/// A rule in a chain: expressions the kernel runs in order, plus an optional comment.
/// Build it from parts: `Rule(in: chain, .match(ipDaddr: "10.0.0.1"), .match(l4proto: .tcp), .jump("svc"))`.
/// Equivalent: `nft add rule ip strait CHAIN ip daddr 10.0.0.1 meta l4proto tcp jump svc`.
public struct Rule: Sendable, Hashable, CustomStringConvertible {
    public var table: Table
    public var chain: String
    public var expressions: [Expression]
    public var comment: String?

    public init(table: Table, chain: String, expressions: [Expression], comment: String? = nil) {
        self.table = table.identity
        self.chain = chain
        self.expressions = expressions
        self.comment = comment
    }

    /// A rule in `chain` made of `parts`, each a short list of expressions (a match or a statement).
    public init(in chain: Chain, _ parts: [Expression]..., comment: String? = nil) {
        self.init(table: chain.table, chain: chain.name, expressions: parts.flatMap { $0 }, comment: comment)
    }

    public var description: String { "rule in chain \(chain) in \(table)" }
}

/// A rule as read back from the kernel, with the handle that deletes or replaces it.
public struct ListedRule: Sendable, Hashable {
    public var handle: UInt64
    public var rule: Rule
}

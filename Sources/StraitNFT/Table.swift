/// An nftables address family. The raw value is the kernel's `NFPROTO_*` number.
public enum Family: UInt8, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    case inet = 1
    case ip = 2
    case arp = 3
    case netdev = 5
    case bridge = 7
    case ip6 = 10

    /// The name `nft` uses: `ip`, `ip6`, `inet`, …
    public var description: String {
        switch self {
        case .inet: "inet"
        case .ip: "ip"
        case .arp: "arp"
        case .netdev: "netdev"
        case .bridge: "bridge"
        case .ip6: "ip6"
        }
    }
}

/// A table: the namespace for chains and sets. Identified by family and name.
/// Equivalent: `nft add table ip strait`.
public struct Table: Sendable, Hashable, CustomStringConvertible {
    public var family: Family
    public var name: String
    public var comment: String?

    public init(_ family: Family, _ name: String, comment: String? = nil) {
        self.family = family
        self.name = name
        self.comment = comment
    }

    /// `table ip strait`, as error messages name it.
    public var description: String { "table \(family) \(name)" }

    /// The same table without attributes, to compare identities.
    var identity: Table { Table(family, name) }
}

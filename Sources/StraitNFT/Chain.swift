/// A chain in a table. A base chain (with `base`) is attached to a netfilter hook;
/// a regular chain is only reached by `jump`/`goto`.
/// Equivalent: `nft add chain ip strait nat-output { type nat hook output priority dstnat; policy accept; }`.
public struct Chain: Sendable, Hashable, CustomStringConvertible {
    public var table: Table
    public var name: String
    public var base: BaseChain?
    public var comment: String?

    public init(table: Table, name: String, base: BaseChain? = nil, comment: String? = nil) {
        self.table = table.identity
        self.name = name
        self.base = base
        self.comment = comment
    }

    public var description: String { "chain \(name) in \(table)" }
}

/// Where and how a base chain hooks into the packet path.
public struct BaseChain: Sendable, Hashable {
    public var type: ChainType
    public var hook: Hook
    public var priority: Int32
    public var policy: Policy
    /// The interface, for `netdev` ingress chains.
    public var device: String?

    public init(type: ChainType, hook: Hook, priority: Int32, policy: Policy = .accept, device: String? = nil) {
        self.type = type
        self.hook = hook
        self.priority = priority
        self.policy = policy
        self.device = device
    }
}

/// The chain type: which hooks and expressions it allows.
public enum ChainType: String, Sendable, Hashable {
    case filter, nat, route
}

/// The netfilter hook; the raw value is `NF_INET_*` (ingress is the netdev/inet ingress hook).
public enum Hook: UInt32, Sendable, Hashable {
    case prerouting = 0, input = 1, forward = 2, output = 3, postrouting = 4, ingress = 5
}

/// What a base chain does with a packet that reaches its end.
public enum Policy: UInt32, Sendable, Hashable {
    case drop = 0, accept = 1
}

/// The standard priorities `nft` names (`priority dstnat` and so on).
public enum Priority {
    public static let raw: Int32 = -300
    public static let mangle: Int32 = -150
    public static let dstnat: Int32 = -100
    public static let filter: Int32 = 0
    public static let security: Int32 = 50
    public static let srcnat: Int32 = 100
}

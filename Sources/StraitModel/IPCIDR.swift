/// An IPv4 or IPv6 prefix, for places that hold either (pod CIDRs, source ranges).
public enum IPCIDR: Sendable, Hashable, Comparable, TextCoded, LosslessStringConvertible {
    case v4(IPv4CIDR)
    case v6(IPv6CIDR)

    /// Text with a `:` is read as IPv6, anything else as IPv4. Host bits are allowed.
    public init(parsing text: some StringProtocol) throws(AddressError) {
        let input = String(text)
        if input.isEmpty { throw AddressError(input: input, kind: .cidr, reason: .empty) }
        self = input.utf8.contains(UInt8(ascii: ":"))
            ? .v6(try IPv6CIDR(parsing: input)) : .v4(try IPv4CIDR(parsing: input))
    }

    /// Like `init(parsing:)`, but host bits are refused.
    public init(networkParsing text: some StringProtocol) throws(AddressError) {
        let input = String(text)
        if input.isEmpty { throw AddressError(input: input, kind: .cidr, reason: .empty) }
        self = input.utf8.contains(UInt8(ascii: ":"))
            ? .v6(try IPv6CIDR(networkParsing: input)) : .v4(try IPv4CIDR(networkParsing: input))
    }

    public init?(_ description: String) {
        guard let value = try? IPCIDR(parsing: description) else { return nil }
        self = value
    }

    /// The single-address prefix: `/32` for IPv4, `/128` for IPv6.
    public init(host address: IPAddress) {
        switch address {
        case .v4(let a): self = .v4(IPv4CIDR(host: a))
        case .v6(let a): self = .v6(IPv6CIDR(host: a))
        }
    }

    /// Whether the prefix holds one address only (`/32`, `/128`).
    public var isHost: Bool { prefixLength == (family == .ipv4 ? 32 : 128) }

    public var family: IPFamily {
        switch self {
        case .v4: .ipv4
        case .v6: .ipv6
        }
    }

    public var ipv4: IPv4CIDR? {
        if case .v4(let cidr) = self { cidr } else { nil }
    }

    public var ipv6: IPv6CIDR? {
        if case .v6(let cidr) = self { cidr } else { nil }
    }

    public var address: IPAddress {
        switch self {
        case .v4(let cidr): .v4(cidr.address)
        case .v6(let cidr): .v6(cidr.address)
        }
    }

    public var network: IPAddress {
        switch self {
        case .v4(let cidr): .v4(cidr.network)
        case .v6(let cidr): .v6(cidr.network)
        }
    }

    public var prefixLength: Int {
        switch self {
        case .v4(let cidr): cidr.prefixLength
        case .v6(let cidr): cidr.prefixLength
        }
    }

    public var masked: IPCIDR {
        switch self {
        case .v4(let cidr): .v4(cidr.masked)
        case .v6(let cidr): .v6(cidr.masked)
        }
    }

    /// False for an address of the other family.
    public func contains(_ address: IPAddress) -> Bool {
        switch (self, address) {
        case (.v4(let cidr), .v4(let a)): cidr.contains(a)
        case (.v6(let cidr), .v6(let a)): cidr.contains(a)
        default: false
        }
    }

    /// False for a prefix of the other family.
    public func overlaps(_ other: IPCIDR) -> Bool {
        switch (self, other) {
        case (.v4(let a), .v4(let b)): a.overlaps(b)
        case (.v6(let a), .v6(let b)): a.overlaps(b)
        default: false
        }
    }

    public var description: String {
        switch self {
        case .v4(let cidr): cidr.description
        case .v6(let cidr): cidr.description
        }
    }

    public static func < (lhs: IPCIDR, rhs: IPCIDR) -> Bool {
        switch (lhs, rhs) {
        case (.v4(let a), .v4(let b)): a < b
        case (.v6(let a), .v6(let b)): a < b
        case (.v4, .v6): true
        case (.v6, .v4): false
        }
    }

}

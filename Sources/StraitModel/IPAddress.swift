/// An IPv4 or IPv6 address, for places that hold either (Service IPs, endpoint addresses).
/// IPv4 addresses order before IPv6 ones.
public enum IPAddress: Sendable, Hashable, Comparable, TextCoded,
    LosslessStringConvertible
{
    case v4(IPv4Address)
    case v6(IPv6Address)

    /// Text with a `:` is read as IPv6, anything else as IPv4.
    public init(parsing text: some StringProtocol) throws(AddressError) {
        let input = String(text)
        let bytes = Array(input.utf8)
        if bytes.isEmpty { throw AddressError(input: input, kind: .ip, reason: .empty) }
        if bytes.contains(UInt8(ascii: ":")) {
            self = .v6(try IPv6Address.parse(bytes, input: input))
        } else {
            self = .v4(try IPv4Address.parse(bytes, input: input))
        }
    }

    public init?(_ description: String) {
        guard let value = try? IPAddress(parsing: description) else { return nil }
        self = value
    }

    public var family: IPFamily {
        switch self {
        case .v4: .ipv4
        case .v6: .ipv6
        }
    }

    public var ipv4: IPv4Address? {
        if case .v4(let address) = self { address } else { nil }
    }

    public var ipv6: IPv6Address? {
        if case .v6(let address) = self { address } else { nil }
    }

    /// 4 or 16 bytes in network order.
    public var bytes: [UInt8] {
        switch self {
        case .v4(let address): address.bytes
        case .v6(let address): address.bytes
        }
    }

    public var next: IPAddress? {
        switch self {
        case .v4(let address): address.next.map(IPAddress.v4)
        case .v6(let address): address.next.map(IPAddress.v6)
        }
    }

    public var previous: IPAddress? {
        switch self {
        case .v4(let address): address.previous.map(IPAddress.v4)
        case .v6(let address): address.previous.map(IPAddress.v6)
        }
    }

    public var description: String {
        switch self {
        case .v4(let address): address.description
        case .v6(let address): address.description
        }
    }

    public static func < (lhs: IPAddress, rhs: IPAddress) -> Bool {
        switch (lhs, rhs) {
        case (.v4(let a), .v4(let b)): a < b
        case (.v6(let a), .v6(let b)): a < b
        case (.v4, .v6): true
        case (.v6, .v4): false
        }
    }

}

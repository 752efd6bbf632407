/// Why a piece of text is not an IP address or CIDR prefix. A value, so tests and callers can
/// match on the exact reason; `description` reads as one sentence naming the input.
public struct AddressError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What the parser was asked to read.
    public enum Kind: String, Sendable, Hashable {
        case ipv4 = "IPv4 address"
        case ipv6 = "IPv6 address"
        case ip = "IP address"
        case ipv4CIDR = "IPv4 CIDR"
        case ipv6CIDR = "IPv6 CIDR"
        case cidr = "CIDR"
    }

    public enum Reason: Sendable, Hashable, CustomStringConvertible {
        case empty
        case invalidCharacter(Character)
        /// An IPv4 address needs exactly four dot-separated octets.
        case wrongOctetCount(Int)
        case emptyOctet
        /// "010" could be octal to some parsers and decimal to others; refuse it.
        case leadingZero(String)
        case octetOutOfRange(String)
        case emptyGroup
        case groupTooLong(String)
        case tooManyGroups
        case tooFewGroups
        case multipleDoubleColons
        case misplacedIPv4
        /// `::ffff:a.b.c.d`: Kubernetes rejects these for Service and Pod IPs; use the IPv4 form.
        case ipv4Mapped
        case zoneNotAllowed
        case missingPrefixLength
        case invalidPrefixLength(String)
        case prefixLengthOutOfRange(Int, maximum: Int)
        /// A network was required but the address has bits set past the prefix.
        case hostBitsSet(network: String)

        public var description: String {
            switch self {
            case .empty: "it is empty"
            case .invalidCharacter(let c): "unexpected character \(String(reflecting: String(c)))"
            case .wrongOctetCount(let n): "expected 4 dot-separated octets, found \(n)"
            case .emptyOctet: "an octet is empty"
            case .leadingZero(let o): "octet \(String(reflecting: o)) has a leading zero"
            case .octetOutOfRange(let o): "octet \(o) is out of range (0-255)"
            case .emptyGroup: "a group is empty"
            case .groupTooLong(let g): "group \(String(reflecting: g)) has more than 4 hex digits"
            case .tooManyGroups: "it has more than 8 groups"
            case .tooFewGroups: "it has fewer than 8 groups and no \"::\""
            case .multipleDoubleColons: "\"::\" appears more than once"
            case .misplacedIPv4: "an embedded IPv4 address may only be the last part"
            case .ipv4Mapped: "IPv4-mapped IPv6 addresses are not allowed; use the plain IPv4 address"
            case .zoneNotAllowed: "zones (\"%\") are not allowed"
            case .missingPrefixLength: "the prefix length (\"/n\") is missing"
            case .invalidPrefixLength(let p): "prefix length \(String(reflecting: p)) is not a decimal number"
            case .prefixLengthOutOfRange(let n, let max): "prefix length \(n) is out of range (0-\(max))"
            case .hostBitsSet(let network): "host bits are set (the network is \(network))"
            }
        }
    }

    public var input: String
    public var kind: Kind
    public var reason: Reason

    public init(input: String, kind: Kind, reason: Reason) {
        self.input = input
        self.kind = kind
        self.reason = reason
    }

    public var description: String {
        "\(String(reflecting: input)) is not a valid \(kind.rawValue): \(reason)"
    }
}

/// The type of one field of a set key or map value, as `nft` names it (`ipv4_addr`, `inet_service`, …).
/// The raw value is nft's datatype number, which the kernel stores and `nft list` reads back.
public enum DataType: UInt32, Sendable, Hashable, CustomStringConvertible {
    case verdict = 1
    case integer = 4
    case ipv4Addr = 7
    case ipv6Addr = 8
    case etherAddr = 9
    case inetProto = 12
    case inetService = 13
    case mark = 19
    case ifname = 41

    /// Bytes of one value of this type (a verdict is the kernel's own 16-byte register).
    public var length: Int {
        switch self {
        case .verdict: 16
        case .integer, .ipv4Addr, .mark: 4
        case .ipv6Addr, .ifname: 16
        case .etherAddr: 6
        case .inetProto: 1
        case .inetService: 2
        }
    }

    /// Whether values are stored in host byte order (else network order); `nft` needs to know to print them.
    var isHostOrder: Bool { self == .integer || self == .mark }

    public var description: String {
        switch self {
        case .verdict: "verdict"
        case .integer: "integer"
        case .ipv4Addr: "ipv4_addr"
        case .ipv6Addr: "ipv6_addr"
        case .etherAddr: "ether_addr"
        case .inetProto: "inet_proto"
        case .inetService: "inet_service"
        case .mark: "mark"
        case .ifname: "ifname"
        }
    }
}

/// A list of field types as one key: one type, or a concatenation (`ipv4_addr . inet_proto . inet_service`).
extension [DataType] {
    /// nft packs a concatenation's type numbers into one: 6 bits per field, first field highest.
    var kernelTypeID: UInt32 { reduce(0) { ($0 << 6) | $1.rawValue } }

    /// A concatenation pads every field to a 4-byte register; a single field keeps its own length.
    var kernelLength: Int {
        count == 1 ? self[0].length : reduce(0) { $0 + ($1.length + 3) / 4 * 4 }
    }

    /// The fields a packed type number stands for, or nil if one is unknown here.
    init?(kernelTypeID: UInt32) {
        var id = kernelTypeID
        var fields: [DataType] = []
        while id != 0 {
            guard let field = DataType(rawValue: id & 0x3f) else { return nil }
            fields.insert(field, at: 0)
            id >>= 6
        }
        guard !fields.isEmpty else { return nil }
        self = fields
    }

    var nftDescription: String { map(\.description).joined(separator: " . ") }
}

/// A layer 4 protocol number (`meta l4proto tcp`).
public struct L4Proto: RawRepresentable, Sendable, Hashable {
    public var rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    public static let icmp = L4Proto(rawValue: 1)
    public static let tcp = L4Proto(rawValue: 6)
    public static let udp = L4Proto(rawValue: 17)
    public static let icmpv6 = L4Proto(rawValue: 58)
    public static let sctp = L4Proto(rawValue: 132)
}

/// What `nft` shows a set's key and value as, when a type alone does not say it: `typeof numgen
/// random mod 2 : ip daddr . th dport`. nft keeps this in the set's user data (TLVs it alone reads)
/// and needs it to print an `integer` key so that its own parser accepts the listing again.
/// Equivalent: `nft add map ip t m { typeof numgen random mod 2 : ip daddr . th dport; }`.
public struct SetTypeof: Sendable, Hashable {
    public var key: TypeofExpression
    public var value: TypeofExpression?

    public init(key: TypeofExpression, value: TypeofExpression? = nil) {
        self.key = key
        self.value = value
    }

    /// Reads the `KEY_TYPEOF` and `DATA_TYPEOF` user data back; nil when the key is a form not known here.
    init?(userData key: [UInt8], value: [UInt8]?) {
        guard let key = TypeofExpression(userData: key) else { return nil }
        self.key = key
        self.value = value.flatMap(TypeofExpression.init(userData:))
    }
}

/// One expression of a `typeof`, encoded as nft 1.0.6 writes it: `[0: expression kind][1: its own TLVs]`.
public enum TypeofExpression: Sendable, Hashable {
    /// A header field, by nft's protocol description and template numbers (`ip saddr`, `th dport`).
    case payload(PayloadTemplate)
    /// `numgen random mod N` (the modulus is only shown; any fits the key).
    case numgen(modulus: UInt32)
    /// `meta l4proto` and the like, by its key.
    case meta(MetaKey)
    /// Fields side by side: `ip daddr . th dport`.
    case concat([TypeofExpression])

    /// nft's `enum expr_types` numbers, as nft 1.0.6 writes them.
    private var kind: UInt32 {
        switch self {
        case .payload: 7
        case .meta: 9
        case .concat: 13
        case .numgen: 23
        }
    }

    /// The TLVs of this expression (without the outer `KEY_TYPEOF`/`DATA_TYPEOF` header).
    var userData: [UInt8] {
        var body: [UInt8] = []
        switch self {
        case .payload(let template):
            body = TLV.u32(0, template.protocolDescription) + TLV.u32(1, template.field)
        case .numgen(let modulus):
            body = TLV.u32(0, NumgenType.random.rawValue) + TLV.u32(1, modulus) + TLV.u32(2, 0)
        case .meta(let key):
            body = TLV.u32(0, key.rawValue)
        case .concat(let fields):
            for (index, field) in fields.enumerated() { body += TLV.bytes(UInt8(index), field.userData) }
        }
        return TLV.u32(0, kind) + TLV.bytes(1, body)
    }

    /// The inverse of `userData`.
    init?(userData: [UInt8]) {
        let outer = TLV.parse(userData)
        guard let kind = outer[0].flatMap(TLV.u32), let body = outer[1] else { return nil }
        let fields = TLV.parse(body)
        switch kind {
        case 7:
            guard let description = fields[0].flatMap(TLV.u32),
                  let field = fields[1].flatMap(TLV.u32) else { return nil }
            self = .payload(PayloadTemplate(protocolDescription: description, field: field))
        case 9:
            guard let key = fields[0].flatMap(TLV.u32) else { return nil }
            self = .meta(MetaKey(rawValue: key))
        case 23:
            guard let modulus = fields[1].flatMap(TLV.u32) else { return nil }
            self = .numgen(modulus: modulus)
        case 13:
            var parts: [TypeofExpression] = []
            for index in 0..<UInt8(fields.count) {
                guard let part = fields[index].flatMap(TypeofExpression.init(userData:)) else { return nil }
                parts.append(part)
            }
            self = .concat(parts)
        default:
            return nil
        }
    }
}

/// A header field as nft's protocol templates number it (`proto_ip`, `proto_tcp`, … in nft's source).
public struct PayloadTemplate: Sendable, Hashable {
    var protocolDescription: UInt32
    var field: UInt32

    public static let ipSaddr = PayloadTemplate(protocolDescription: 12, field: 11)
    public static let ipDaddr = PayloadTemplate(protocolDescription: 12, field: 12)
    public static let ip6Saddr = PayloadTemplate(protocolDescription: 13, field: 8)
    public static let ip6Daddr = PayloadTemplate(protocolDescription: 13, field: 9)
    /// `th dport`: any transport protocol's (a `tcp dport` value makes nft refuse a UDP rule using the map).
    public static let thDport = PayloadTemplate(protocolDescription: 11, field: 2)
}

/// nft's user data TLVs: a type byte, a length byte, the value (u32 in host order).
enum TLV {
    static func u32(_ type: UInt8, _ value: UInt32) -> [UInt8] {
        [type, 4] + withUnsafeBytes(of: value) { Array($0) }
    }

    static func bytes(_ type: UInt8, _ value: [UInt8]) -> [UInt8] { [type, UInt8(value.count)] + value }

    static func u32(_ value: [UInt8]) -> UInt32? {
        value.count == 4 ? value.withUnsafeBytes { $0.loadUnaligned(as: UInt32.self) } : nil
    }

    /// TLVs by type (the last of a type wins; nft writes each once).
    static func parse(_ bytes: [UInt8]) -> [UInt8: [UInt8]] {
        bytes.withUnsafeBytes { UserData.parse($0.baseAddress, UInt32($0.count)) }
    }
}

#if canImport(Glibc)
import Glibc
#endif

/// One typed value: a field of a set element's key, a map value, or a constant a rule compares with.
/// String literals are IP addresses (`"10.0.0.1"`, `"fd00::1"`), integer literals are `integer`s.
public enum Datum: Sendable, Hashable, CustomStringConvertible, ExpressibleByStringLiteral,
    ExpressibleByIntegerLiteral {
    case ipv4(String)
    case ipv6(String)
    case proto(L4Proto)
    case port(UInt16)
    case mark(UInt32)
    case integer(UInt32)
    case ifname(String)
    case bytes([UInt8])

    public init(stringLiteral value: String) {
        self = value.contains(":") ? .ipv6(value) : .ipv4(value)
    }

    public init(integerLiteral value: UInt32) { self = .integer(value) }

    public var description: String {
        switch self {
        case .ipv4(let address), .ipv6(let address): address
        case .proto(let proto): "\(proto.rawValue)"
        case .port(let port): "\(port)"
        case .mark(let value): "0x" + String(value, radix: 16)
        case .integer(let value): "\(value)"
        case .ifname(let name): "\"\(name)\""
        case .bytes(let bytes): "0x" + bytes.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
        }
    }

    /// The bytes the kernel compares: addresses and ports in network order, marks and integers in host order.
    func encoded() throws(NFTError) -> [UInt8] {
        switch self {
        case .ipv4(let text):
            var address = in_addr()
            guard inet_pton(AF_INET, text, &address) == 1 else { throw NFTError.invalid("IPv4 address \"\(text)\"") }
            return withUnsafeBytes(of: address) { Array($0) }
        case .ipv6(let text):
            var address = in6_addr()
            guard inet_pton(AF_INET6, text, &address) == 1 else { throw NFTError.invalid("IPv6 address \"\(text)\"") }
            return withUnsafeBytes(of: address) { Array($0) }
        case .proto(let proto): return [proto.rawValue]
        case .port(let port): return [UInt8(port >> 8), UInt8(port & 0xff)]
        case .mark(let value), .integer(let value): return withUnsafeBytes(of: value) { Array($0) }
        case .ifname(let name):
            let bytes = Array(name.utf8)
            guard bytes.count < 16 else { throw NFTError.invalid("interface name \"\(name)\"") }
            return bytes + [UInt8](repeating: 0, count: 16 - bytes.count)
        case .bytes(let bytes): return bytes
        }
    }

    /// Reads a value of `type` back from the kernel's bytes.
    init(decoding bytes: ArraySlice<UInt8>, as type: DataType) {
        let bytes = Array(bytes)
        switch type {
        case .ipv4Addr where bytes.count == 4:
            self = .ipv4(Datum.presentation(AF_INET, bytes))
        case .ipv6Addr where bytes.count == 16:
            self = .ipv6(Datum.presentation(AF_INET6, bytes))
        case .inetProto where bytes.count == 1:
            self = .proto(L4Proto(rawValue: bytes[0]))
        case .inetService where bytes.count == 2:
            self = .port(UInt16(bytes[0]) << 8 | UInt16(bytes[1]))
        case .mark where bytes.count == 4, .integer where bytes.count == 4:
            let value = bytes.withUnsafeBytes { $0.loadUnaligned(as: UInt32.self) }
            self = type == .mark ? .mark(value) : .integer(value)
        case .ifname:
            self = .ifname(String(decoding: bytes.prefix { $0 != 0 }, as: UTF8.self))
        default:
            self = .bytes(bytes)
        }
    }

    private static func presentation(_ family: Int32, _ bytes: [UInt8]) -> String {
        var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        _ = bytes.withUnsafeBytes { inet_ntop(family, $0.baseAddress, &text, socklen_t(text.count)) }
        return String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

extension [Datum] {
    /// A key's bytes: one field as is, a concatenation with every field padded to 4 bytes.
    func encodedKey() throws(NFTError) -> [UInt8] {
        if count == 1 { return try self[0].encoded() }
        var bytes: [UInt8] = []
        for datum in self {
            let field = try datum.encoded()
            bytes += field
            bytes += [UInt8](repeating: 0, count: (4 - field.count % 4) % 4)
        }
        return bytes
    }

    /// Splits a key's bytes into fields of `types` (the inverse of `encodedKey`).
    init(decoding bytes: [UInt8], as types: [DataType]) {
        guard types.count > 1 else {
            self = [Datum(decoding: bytes[...], as: types.first ?? .integer)]
            return
        }
        var fields: [Datum] = []
        var offset = 0
        for type in types {
            let end = Swift.min(offset + type.length, bytes.count)
            fields.append(Datum(decoding: bytes[offset..<end], as: type))
            offset += (type.length + 3) / 4 * 4
        }
        self = fields
    }
}

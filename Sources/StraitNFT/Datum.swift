#if canImport(Glibc)
import Glibc
#endif

/// One typed value: a field of a set element's key, a map value, or a constant a rule compares with.
/// String literals are IP addresses (`"10.0.0.1"`, `"fd00::1"`), integer literals are `integer`s.
///
/// Addresses are held as the kernel's bytes, read once from their text: a full sync encodes and
/// compares hundreds of thousands of them, and a value that is its bytes needs neither parsing nor
/// a heap object. Text that is no address is kept as written and refused, naming it, when encoded.
public struct Datum: Sendable, Hashable, CustomStringConvertible, ExpressibleByStringLiteral,
    ExpressibleByIntegerLiteral {
    /// What the value is, to match on (`if case .port(let port) = datum.value`).
    public enum Value: Sendable, Hashable {
        /// In network order, as the kernel compares it.
        case ipv4(UInt32)
        case ipv6(UInt64, UInt64)
        case proto(L4Proto)
        case port(UInt16)
        case mark(UInt32)
        case integer(UInt32)
        case ifname(String)
        case bytes([UInt8])
        /// Text given as an address of `family` that is none: refused when encoded.
        case invalidAddress(family: Int32, text: String)
    }

    public let value: Value

    @usableFromInline
    init(_ value: Value) { self.value = value }

    /// An IPv4 address in dotted-decimal text.
    public static func ipv4(_ text: String) -> Datum {
        var address = in_addr()
        guard inet_pton(AF_INET, text, &address) == 1 else { return Datum(.invalidAddress(family: AF_INET, text: text)) }
        return Datum(.ipv4(address.s_addr))
    }

    /// An IPv6 address in its text forms.
    public static func ipv6(_ text: String) -> Datum {
        var address = in6_addr()
        guard inet_pton(AF_INET6, text, &address) == 1 else {
            return Datum(.invalidAddress(family: AF_INET6, text: text))
        }
        return withUnsafeBytes(of: address) { Datum(ipv6Bytes: $0) }
    }

    @inlinable public static func proto(_ proto: L4Proto) -> Datum { Datum(.proto(proto)) }
    @inlinable public static func port(_ port: UInt16) -> Datum { Datum(.port(port)) }
    @inlinable public static func mark(_ value: UInt32) -> Datum { Datum(.mark(value)) }
    @inlinable public static func integer(_ value: UInt32) -> Datum { Datum(.integer(value)) }
    public static func ifname(_ name: String) -> Datum { Datum(.ifname(name)) }
    public static func bytes(_ bytes: [UInt8]) -> Datum { Datum(.bytes(bytes)) }

    /// An IPv4 address from its value (`a.b.c.d` is `a << 24 | b << 16 | c << 8 | d`).
    @inlinable public init(ipv4 value: UInt32) { self.init(.ipv4(value.bigEndian)) }
    /// An IPv6 address from its value, first 64 bits in `high`.
    @inlinable public init(ipv6High high: UInt64, low: UInt64) { self.init(.ipv6(high.bigEndian, low.bigEndian)) }

    /// 16 bytes in network order.
    private init(ipv6Bytes bytes: UnsafeRawBufferPointer) {
        self.init(.ipv6(bytes.loadUnaligned(fromByteOffset: 0, as: UInt64.self),
                        bytes.loadUnaligned(fromByteOffset: 8, as: UInt64.self)))
    }

    public init(stringLiteral value: String) {
        self = value.contains(":") ? .ipv6(value) : .ipv4(value)
    }

    public init(integerLiteral value: UInt32) { self = .integer(value) }

    public var description: String {
        switch value {
        case .ipv4(let address):
            return withUnsafeBytes(of: address) { Datum.presentation(AF_INET, $0) }
        case .ipv6(let high, let low):
            return withUnsafeBytes(of: (high, low)) { Datum.presentation(AF_INET6, $0) }
        case .invalidAddress(_, let text): return text
        case .proto(let proto): return "\(proto.rawValue)"
        case .port(let port): return "\(port)"
        case .mark(let value): return "0x" + String(value, radix: 16)
        case .integer(let value): return "\(value)"
        case .ifname(let name): return "\"\(name)\""
        case .bytes(let bytes): return "0x" + bytes.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
        }
    }

    /// The number of bytes `write` writes.
    var encodedLength: Int {
        switch value {
        case .ipv4, .mark, .integer: 4
        case .ipv6, .ifname: 16
        case .proto: 1
        case .port: 2
        case .bytes(let bytes): bytes.count
        case .invalidAddress: 0
        }
    }

    /// Writes the bytes the kernel compares (addresses and ports in network order, marks and
    /// integers in host order) at `destination`, which has room for `encodedLength` bytes.
    func write(to destination: UnsafeMutableRawPointer) throws(NFTError) {
        switch value {
        case .ipv4(let address): destination.storeBytes(of: address, as: UInt32.self)
        case .ipv6(let high, let low):
            destination.storeBytes(of: high, as: UInt64.self)
            destination.storeBytes(of: low, toByteOffset: 8, as: UInt64.self)
        case .proto(let proto): destination.storeBytes(of: proto.rawValue, as: UInt8.self)
        case .port(let port): destination.storeBytes(of: port.bigEndian, as: UInt16.self)
        case .mark(let value), .integer(let value): destination.storeBytes(of: value, as: UInt32.self)
        case .ifname(let name):
            let bytes = Array(name.utf8)
            guard bytes.count < 16 else { throw NFTError.invalid("interface name \"\(name)\"") }
            destination.initializeMemory(as: UInt8.self, repeating: 0, count: 16)
            bytes.withUnsafeBytes { destination.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
        case .bytes(let bytes):
            bytes.withUnsafeBytes { if let base = $0.baseAddress { destination.copyMemory(from: base, byteCount: $0.count) } }
        case .invalidAddress(let family, let text):
            throw NFTError.invalid("\(family == AF_INET ? "IPv4" : "IPv6") address \"\(text)\"")
        }
    }

    /// The bytes the kernel compares (see `write`).
    func encoded() throws(NFTError) -> [UInt8] {
        let length = encodedLength
        var bytes = [UInt8](repeating: 0, count: Swift.max(length, 1))
        var failure: NFTError?
        bytes.withUnsafeMutableBytes { raw in
            do throws(NFTError) { try write(to: raw.baseAddress!) } catch { failure = error }
        }
        if let failure { throw failure }
        bytes.removeLast(bytes.count - length)
        return bytes
    }

    /// Reads a value of `type` back from the kernel's bytes.
    init(decoding bytes: UnsafeRawBufferPointer, as type: DataType) {
        switch type {
        case .ipv4Addr where bytes.count == 4:
            self.init(.ipv4(bytes.loadUnaligned(as: UInt32.self)))
        case .ipv6Addr where bytes.count == 16:
            self.init(ipv6Bytes: bytes)
        case .inetProto where bytes.count == 1:
            self.init(.proto(L4Proto(rawValue: bytes[0])))
        case .inetService where bytes.count == 2:
            self.init(.port(UInt16(bytes[0]) << 8 | UInt16(bytes[1])))
        case .mark where bytes.count == 4:
            self.init(.mark(bytes.loadUnaligned(as: UInt32.self)))
        case .integer where bytes.count == 4:
            self.init(.integer(bytes.loadUnaligned(as: UInt32.self)))
        case .ifname:
            self.init(.ifname(String(decoding: bytes.prefix { $0 != 0 }, as: UTF8.self)))
        default:
            self.init(.bytes(Array(bytes)))
        }
    }

    init(decoding bytes: ArraySlice<UInt8>, as type: DataType) {
        self = bytes.withUnsafeBytes { Datum(decoding: $0, as: type) }
    }

    private static func presentation(_ family: Int32, _ bytes: UnsafeRawBufferPointer) -> String {
        withUnsafeTemporaryAllocation(of: CChar.self, capacity: Int(INET6_ADDRSTRLEN)) { text in
            guard inet_ntop(family, bytes.baseAddress, text.baseAddress, socklen_t(text.count)) != nil else {
                return ""
            }
            return String(cString: text.baseAddress!)
        }
    }
}

extension [Datum] {
    /// The length of a key: one field as is, a concatenation with every field padded to 4 bytes.
    var encodedKeyLength: Int {
        if count == 1 { return self[0].encodedLength }
        // The fields are read in place (no copy of each): a full sync encodes hundreds of thousands.
        return withUnsafeBufferPointer { fields in
            var length = 0
            for index in fields.indices { length += (fields[index].encodedLength + 3) & ~3 }
            return length
        }
    }

    /// Writes a key's bytes (`encodedKeyLength` of them) at `destination`, padding zeroed.
    func writeKey(to destination: UnsafeMutableRawPointer) throws(NFTError) {
        if count == 1 { return try self[0].write(to: destination) }
        var failure: NFTError?
        withUnsafeBufferPointer { fields in
            var offset = 0
            for index in fields.indices {
                let length = fields[index].encodedLength, padded = (length + 3) & ~3
                do throws(NFTError) { try fields[index].write(to: destination + offset) } catch {
                    failure = error
                    return
                }
                if padded > length {
                    (destination + offset + length).initializeMemory(as: UInt8.self, repeating: 0, count: padded - length)
                }
                offset += padded
            }
        }
        if let failure { throw failure }
    }

    /// A key's bytes: one field as is, a concatenation with every field padded to 4 bytes.
    func encodedKey() throws(NFTError) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: encodedKeyLength)
        guard !bytes.isEmpty else { return bytes }
        var failure: NFTError?
        bytes.withUnsafeMutableBytes { raw in
            do throws(NFTError) { try writeKey(to: raw.baseAddress!) } catch { failure = error }
        }
        if let failure { throw failure }
        return bytes
    }

    /// Splits a key's bytes into fields of `types` (the inverse of `encodedKey`).
    init(decoding bytes: UnsafeRawBufferPointer, as types: [DataType]) {
        var fields: [Datum] = []
        fields.reserveCapacity(types.count)
        Self.forEachField(of: bytes, as: types) { fields.append($0) }
        self = fields
    }

    /// Calls `body` with each field of a key's bytes, read as `types`: one field is the whole of
    /// them, a concatenation's fields sit at 4-byte boundaries.
    static func forEachField(of bytes: UnsafeRawBufferPointer, as types: [DataType], _ body: (Datum) -> Void) {
        guard types.count > 1 else {
            body(Datum(decoding: bytes, as: types.first ?? .integer))
            return
        }
        var offset = 0
        for type in types {
            let start = Swift.min(offset, bytes.count), end = Swift.min(offset + type.length, bytes.count)
            body(Datum(decoding: UnsafeRawBufferPointer(rebasing: bytes[start..<end]), as: type))
            offset += (type.length + 3) / 4 * 4
        }
    }

    init(decoding bytes: [UInt8], as types: [DataType]) {
        self = bytes.withUnsafeBytes { [Datum](decoding: $0, as: types) }
    }
}

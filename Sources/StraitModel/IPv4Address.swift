/// An IPv4 address, stored as its 32 bits in host order (`10.0.0.1` is `0x0A00_0001`).
///
/// Parsing is strict dotted-decimal: exactly four octets, 0-255, no leading zeros ("010.0.0.1"
/// is refused, since some parsers read it as octal), no whitespace.
public struct IPv4Address: IPAddressValue, CustomStringConvertible {
    public static let family = IPFamily.ipv4
    public static let bitWidth = 32
    public static let zero = IPv4Address(0)

    public var rawValue: UInt32

    public init(_ rawValue: UInt32) {
        self.rawValue = rawValue
    }

    public init(_ a: UInt8, _ b: UInt8, _ c: UInt8, _ d: UInt8) {
        rawValue = UInt32(a) << 24 | UInt32(b) << 16 | UInt32(c) << 8 | UInt32(d)
    }

    public init(parsing text: some StringProtocol) throws(AddressError) {
        let input = String(text)
        self = try Self.parse(Array(input.utf8), input: input)
    }

    /// Parses dotted-decimal bytes. Throws with `input` (the caller's whole text) in the error.
    static func parse(_ bytes: [UInt8], input: String, kind: AddressError.Kind = .ipv4)
        throws(AddressError) -> IPv4Address
    {
        func fail(_ reason: AddressError.Reason) -> AddressError {
            AddressError(input: input, kind: kind, reason: reason)
        }
        if bytes.isEmpty { throw fail(.empty) }
        var octets: [UInt32] = []
        var start = 0
        var i = 0
        while i <= bytes.count {
            if i == bytes.count || bytes[i] == UInt8(ascii: ".") {
                let part = bytes[start..<i]
                let text = String(decoding: part, as: UTF8.self)
                if part.isEmpty { throw fail(.emptyOctet) }
                if part.count > 1 && part.first == UInt8(ascii: "0") { throw fail(.leadingZero(text)) }
                if part.count > 3 { throw fail(.octetOutOfRange(text)) }
                var value: UInt32 = 0
                for byte in part { value = value * 10 + UInt32(byte - UInt8(ascii: "0")) }
                if value > 255 { throw fail(.octetOutOfRange(text)) }
                octets.append(value)
                start = i + 1
            } else if !(UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[i]) {
                throw fail(.invalidCharacter(Self.character(at: i, in: bytes)))
            }
            i += 1
        }
        guard octets.count == 4 else { throw fail(.wrongOctetCount(octets.count)) }
        return IPv4Address(octets[0] << 24 | octets[1] << 16 | octets[2] << 8 | octets[3])
    }

    /// The (possibly multi-byte) character starting at byte offset `i`, for error messages.
    static func character(at i: Int, in bytes: [UInt8]) -> Character {
        let text = String(decoding: bytes[i...], as: UTF8.self)
        return text.first ?? "?"
    }

    /// The four octets, most significant first.
    public var octets: [UInt8] {
        [UInt8(rawValue >> 24), UInt8(truncatingIfNeeded: rawValue >> 16),
         UInt8(truncatingIfNeeded: rawValue >> 8), UInt8(truncatingIfNeeded: rawValue)]
    }

    /// Written digit by digit into the string's own storage: at most 15 bytes, a small string
    /// that needs no allocation (translations format tens of thousands of addresses).
    public var description: String {
        String(unsafeUninitializedCapacity: 15) { buffer in
            var count = 0
            for shift in [24, 16, 8, 0] as [UInt32] {
                let octet = UInt8(truncatingIfNeeded: rawValue >> shift)
                if octet >= 100 { buffer[count] = UInt8(ascii: "0") + octet / 100; count += 1 }
                if octet >= 10 { buffer[count] = UInt8(ascii: "0") + octet / 10 % 10; count += 1 }
                buffer[count] = UInt8(ascii: "0") + octet % 10
                count += 1
                if shift > 0 { buffer[count] = UInt8(ascii: "."); count += 1 }
            }
            return count
        }
    }

    public static func < (lhs: IPv4Address, rhs: IPv4Address) -> Bool { lhs.rawValue < rhs.rawValue }

    static func hostMask(_ prefixLength: Int) -> UInt32 {
        prefixLength >= 32 ? 0 : UInt32.max >> UInt32(max(prefixLength, 0))
    }

    public func masked(prefixLength: Int) -> IPv4Address {
        IPv4Address(rawValue & ~Self.hostMask(prefixLength))
    }

    public func filled(prefixLength: Int) -> IPv4Address {
        IPv4Address(rawValue | Self.hostMask(prefixLength))
    }

    public func adding(_ value: UInt64, shiftedLeftBy shift: Int) -> IPv4Address? {
        guard let delta = Self.shifted(value, by: shift) else { return nil }
        let (sum, overflow) = UInt64(rawValue).addingReportingOverflow(delta)
        return overflow || sum > UInt64(UInt32.max) ? nil : IPv4Address(UInt32(sum))
    }

    public func subtracting(_ value: UInt64, shiftedLeftBy shift: Int) -> IPv4Address? {
        guard let delta = Self.shifted(value, by: shift), delta <= UInt64(rawValue) else { return nil }
        return IPv4Address(UInt32(UInt64(rawValue) - delta))
    }

    public func distance(from base: IPv4Address) -> UInt64? {
        base.rawValue <= rawValue ? UInt64(rawValue - base.rawValue) : nil
    }

    /// `value << shift` if it fits in 33 bits (anything larger overflows an IPv4 address anyway).
    private static func shifted(_ value: UInt64, by shift: Int) -> UInt64? {
        if value == 0 { return 0 }
        guard shift >= 0, shift < 33, value.leadingZeroBitCount >= 31 + shift else { return nil }
        return value << UInt64(shift)
    }

    public var isUnspecified: Bool { rawValue == 0 }
    /// 127.0.0.0/8
    public var isLoopback: Bool { rawValue >> 24 == 127 }
    /// 169.254.0.0/16
    public var isLinkLocal: Bool { rawValue >> 16 == 0xA9FE }
    /// 224.0.0.0/4
    public var isMulticast: Bool { rawValue >> 28 == 0xE }
}

extension IPv4Address {
    /// From 4 bytes in network order; nil for any other count.
    public init?(bytes: some Collection<UInt8>) {
        guard bytes.count == 4 else { return nil }
        rawValue = bytes.reduce(0) { $0 << 8 | UInt32($1) }
    }

    /// The 4 bytes in network order (the same as `octets`).
    public var bytes: [UInt8] { octets }
}

/// An IPv6 address, stored as two 64-bit halves in host order (`high` holds the first 8 bytes).
///
/// Parsing accepts RFC 4291 text: 1-4 hex digits per group in either case, one `::`, and a
/// trailing dotted IPv4 part (`64:ff9b::192.0.2.1`). It refuses zones (`fe80::1%eth0`) and
/// IPv4-mapped addresses (`::ffff:1.2.3.4`), which Kubernetes rejects for Service and Pod IPs.
/// `description` is the RFC 5952 canonical form.
public struct IPv6Address: IPAddressValue, CustomStringConvertible {
    public static let family = IPFamily.ipv6
    public static let bitWidth = 128
    public static let zero = IPv6Address(high: 0, low: 0)

    public var high: UInt64
    public var low: UInt64

    public init(high: UInt64, low: UInt64) {
        self.high = high
        self.low = low
    }

    /// From the eight 16-bit groups, first group first.
    public init(groups: [UInt16]) {
        precondition(groups.count == 8, "an IPv6 address has 8 groups")
        high = groups[0..<4].reduce(0) { $0 << 16 | UInt64($1) }
        low = groups[4..<8].reduce(0) { $0 << 16 | UInt64($1) }
    }

    /// From 16 bytes in network order; nil for any other count.
    public init?(bytes: some Collection<UInt8>) {
        guard bytes.count == 16 else { return nil }
        let array = Array(bytes)
        high = array[0..<8].reduce(0) { $0 << 8 | UInt64($1) }
        low = array[8..<16].reduce(0) { $0 << 8 | UInt64($1) }
    }

    /// The eight 16-bit groups, first group first.
    public var groups: [UInt16] {
        (0..<4).map { UInt16(truncatingIfNeeded: high >> (48 - 16 * UInt64($0))) }
            + (0..<4).map { UInt16(truncatingIfNeeded: low >> (48 - 16 * UInt64($0))) }
    }

    /// The 16 bytes in network order.
    public var bytes: [UInt8] {
        (0..<8).map { UInt8(truncatingIfNeeded: high >> (56 - 8 * UInt64($0))) }
            + (0..<8).map { UInt8(truncatingIfNeeded: low >> (56 - 8 * UInt64($0))) }
    }

    public init(parsing text: some StringProtocol) throws(AddressError) {
        let input = String(text)
        self = try Self.parse(Array(input.utf8), input: input)
    }

    static func parse(_ bytes: [UInt8], input: String, kind: AddressError.Kind = .ipv6)
        throws(AddressError) -> IPv6Address
    {
        func fail(_ reason: AddressError.Reason) -> AddressError {
            AddressError(input: input, kind: kind, reason: reason)
        }
        let colon = UInt8(ascii: ":")
        if bytes.isEmpty { throw fail(.empty) }
        if bytes.contains(UInt8(ascii: "%")) { throw fail(.zoneNotAllowed) }

        var doubleColon: Int?
        var i = 0
        while i + 1 < bytes.count {
            if bytes[i] == colon && bytes[i + 1] == colon {
                if doubleColon != nil { throw fail(.multipleDoubleColons) }
                doubleColon = i
                i += 2
                if i < bytes.count && bytes[i] == colon { throw fail(.emptyGroup) }
            } else {
                i += 1
            }
        }

        /// The groups of one side of `::`; a dotted IPv4 part is allowed only at the very end.
        func groups(_ part: ArraySlice<UInt8>, endsAddress: Bool) throws(AddressError) -> [UInt16] {
            if part.isEmpty { return [] }
            var result: [UInt16] = []
            let components = part.split(separator: colon, omittingEmptySubsequences: false)
            for (index, component) in components.enumerated() {
                if component.isEmpty { throw fail(.emptyGroup) }
                if component.contains(UInt8(ascii: ".")) {
                    guard endsAddress && index == components.count - 1 else { throw fail(.misplacedIPv4) }
                    let v4 = try IPv4Address.parse(Array(component), input: input, kind: kind)
                    result.append(UInt16(v4.rawValue >> 16))
                    result.append(UInt16(truncatingIfNeeded: v4.rawValue))
                    continue
                }
                var value: UInt16 = 0
                for (offset, byte) in component.enumerated() {
                    guard let digit = Self.hexValue(byte) else {
                        throw fail(.invalidCharacter(IPv4Address.character(
                            at: component.startIndex + offset, in: bytes)))
                    }
                    if offset >= 4 { throw fail(.groupTooLong(String(decoding: component, as: UTF8.self))) }
                    value = value << 4 | UInt16(digit)
                }
                result.append(value)
            }
            return result
        }

        var all: [UInt16]
        if let at = doubleColon {
            let head = try groups(bytes[0..<at], endsAddress: false)
            let tail = try groups(bytes[(at + 2)...], endsAddress: true)
            if head.count + tail.count > 7 { throw fail(.tooManyGroups) }
            all = head + Array(repeating: 0, count: 8 - head.count - tail.count) + tail
        } else {
            all = try groups(bytes[...], endsAddress: true)
            if all.count > 8 { throw fail(.tooManyGroups) }
            if all.count < 8 { throw fail(.tooFewGroups) }
        }
        let address = IPv6Address(groups: all)
        if address.isIPv4Mapped { throw fail(.ipv4Mapped) }
        return address
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }

    /// RFC 5952: lowercase, no leading zeros, the longest run (two or more) of zero groups
    /// replaced by `::`, the first such run when tied.
    public var description: String {
        let groups = self.groups
        var bestStart = -1, bestLength = 0
        var runStart = -1
        for index in 0...8 {
            if index < 8 && groups[index] == 0 {
                if runStart < 0 { runStart = index }
            } else if runStart >= 0 {
                if index - runStart > bestLength && index - runStart >= 2 {
                    bestStart = runStart
                    bestLength = index - runStart
                }
                runStart = -1
            }
        }
        func hex(_ range: Range<Int>) -> String {
            groups[range].map { String($0, radix: 16) }.joined(separator: ":")
        }
        if bestStart < 0 { return hex(0..<8) }
        return hex(0..<bestStart) + "::" + hex((bestStart + bestLength)..<8)
    }

    public static func < (lhs: IPv6Address, rhs: IPv6Address) -> Bool {
        (lhs.high, lhs.low) < (rhs.high, rhs.low)
    }

    private static func masks(_ prefixLength: Int) -> (high: UInt64, low: UInt64) {
        func mask(_ bits: Int) -> UInt64 {
            bits <= 0 ? 0 : bits >= 64 ? .max : ~(UInt64.max >> UInt64(bits))
        }
        return (mask(prefixLength), mask(prefixLength - 64))
    }

    public func masked(prefixLength: Int) -> IPv6Address {
        let m = Self.masks(prefixLength)
        return IPv6Address(high: high & m.high, low: low & m.low)
    }

    public func filled(prefixLength: Int) -> IPv6Address {
        let m = Self.masks(prefixLength)
        return IPv6Address(high: high | ~m.high, low: low | ~m.low)
    }

    /// `value << shift` as 128 bits, nil if it does not fit.
    private static func shifted(_ value: UInt64, by shift: Int) -> (high: UInt64, low: UInt64)? {
        if value == 0 { return (0, 0) }
        guard shift >= 0, shift < 128 else { return nil }
        if shift == 0 { return (0, value) }
        if shift < 64 { return (value >> UInt64(64 - shift), value << UInt64(shift)) }
        guard value.leadingZeroBitCount >= shift - 64 else { return nil }
        return (value << UInt64(shift - 64), 0)
    }

    public func adding(_ value: UInt64, shiftedLeftBy shift: Int) -> IPv6Address? {
        guard let delta = Self.shifted(value, by: shift) else { return nil }
        let (newLow, carry) = low.addingReportingOverflow(delta.low)
        let (partial, overflow1) = high.addingReportingOverflow(delta.high)
        let (newHigh, overflow2) = partial.addingReportingOverflow(carry ? 1 : 0)
        return overflow1 || overflow2 ? nil : IPv6Address(high: newHigh, low: newLow)
    }

    public func subtracting(_ value: UInt64, shiftedLeftBy shift: Int) -> IPv6Address? {
        guard let delta = Self.shifted(value, by: shift) else { return nil }
        let (newLow, borrow) = low.subtractingReportingOverflow(delta.low)
        let (partial, overflow1) = high.subtractingReportingOverflow(delta.high)
        let (newHigh, overflow2) = partial.subtractingReportingOverflow(borrow ? 1 : 0)
        return overflow1 || overflow2 ? nil : IPv6Address(high: newHigh, low: newLow)
    }

    public func distance(from base: IPv6Address) -> UInt64? {
        guard base <= self else { return nil }
        let (lowDiff, borrow) = low.subtractingReportingOverflow(base.low)
        let highDiff = high - base.high - (borrow ? 1 : 0)
        return highDiff == 0 ? lowDiff : nil
    }

    public var isUnspecified: Bool { high == 0 && low == 0 }
    /// ::1
    public var isLoopback: Bool { high == 0 && low == 1 }
    /// fe80::/10
    public var isLinkLocal: Bool { high >> 54 == 0x3FA }
    /// ff00::/8
    public var isMulticast: Bool { high >> 56 == 0xFF }
    /// ::ffff:0:0/96, which parsing refuses.
    public var isIPv4Mapped: Bool { high == 0 && low >> 32 == 0xFFFF }
}

import Testing
import StraitModel

@Suite struct IPv6AddressTests {
    /// Input, then its RFC 5952 canonical form.
    @Test(arguments: [
        ("::", "::"),
        ("::1", "::1"),
        ("1::", "1::"),
        ("0:0:0:0:0:0:0:0", "::"),
        ("0:0:0:0:0:0:0:1", "::1"),
        ("2001:DB8::1", "2001:db8::1"),
        ("2001:0db8:0000:0000:0000:0000:0000:0001", "2001:db8::1"),
        ("2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"),          // tie: first run wins
        ("2001:0:0:1:0:0:0:1", "2001:0:0:1::1"),                // longest run wins
        ("2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1"),       // one zero group is not compressed
        ("2001:db8::1:1:1:1:1", "2001:db8:0:1:1:1:1:1"),
        ("1:0:0:0:0:0:0:0", "1::"),
        ("0:0:0:0:0:0:0:1", "::1"),
        ("1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7:8"),
        ("1:2:3:4:5:6:7::", "1:2:3:4:5:6:7:0"),
        ("::2:3:4:5:6:7:8", "0:2:3:4:5:6:7:8"),
        ("fe80::a:B:c:D", "fe80::a:b:c:d"),
        ("FFFF:FFFF:FFFF:FFFF:FFFF:FFFF:FFFF:FFFF", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"),
        ("fd00:10:96::a", "fd00:10:96::a"),
        ("0:0:1:0:0:1:0:0", "::1:0:0:1:0:0"),
        ("1:0:0:2:0:0:0:3", "1:0:0:2::3"),
        ("64:ff9b::192.0.2.33", "64:ff9b::c000:221"),
        ("::1.2.3.4", "::102:304"),
        ("1:2:3:4:5:6:1.2.3.4", "1:2:3:4:5:6:102:304"),
        ("00ab::0001", "ab::1"),
    ])
    func parsesToCanonicalForm(text: String, canonical: String) throws {
        let address = try IPv6Address(parsing: text)
        #expect(address.description == canonical)
        #expect(try IPv6Address(parsing: canonical) == address)
    }

    @Test(arguments: [
        ("", AddressError.Reason.empty),
        ("::ffff:1.2.3.4", .ipv4Mapped),
        ("::ffff:102:304", .ipv4Mapped),
        ("0:0:0:0:0:ffff:a00:1", .ipv4Mapped),
        ("fe80::1%eth0", .zoneNotAllowed),
        ("1::2::3", .multipleDoubleColons),
        (":::", .emptyGroup),
        ("1:::2", .emptyGroup),
        (":1:2:3:4:5:6:7", .emptyGroup),
        ("1:2:3:4:5:6:7:", .emptyGroup),
        (":1::", .emptyGroup),
        ("1::2:", .emptyGroup),
        ("1:2:3:4:5:6:7", .tooFewGroups),
        ("1:2:3:4:5:6:7:8:9", .tooManyGroups),
        ("1:2:3:4:5:6:7:8::", .tooManyGroups),
        ("::1:2:3:4:5:6:7:8", .tooManyGroups),
        ("1:2:3:4::5:6:7:8", .tooManyGroups),
        ("1:2:3:4:5:6:7:1.2.3.4", .tooManyGroups),
        ("12345::", .groupTooLong("12345")),
        ("g::1", .invalidCharacter("g")),
        ("2001:db8::1 ", .invalidCharacter(" ")),
        ("2001:db8::-1", .invalidCharacter("-")),
        ("1.2.3.4::", .misplacedIPv4),
        ("::1.2.3.4:5", .misplacedIPv4),
        ("::1.2.3.256", .octetOutOfRange("256")),
        ("::1.2.3", .wrongOctetCount(3)),
        ("::01.2.3.4", .leadingZero("01")),
        ("1.2.3.4", .tooFewGroups),
        ("2001:db8::/64", .invalidCharacter("/")),
    ] as [(String, AddressError.Reason)])
    func rejects(text: String, reason: AddressError.Reason) {
        #expect(throws: AddressError(input: text, kind: .ipv6, reason: reason)) {
            try IPv6Address(parsing: text)
        }
        #expect(IPv6Address(text) == nil)
    }

    @Test func mappedErrorIsClear() throws {
        let error = try #require(throws: AddressError.self) { try IPv6Address(parsing: "::ffff:1.2.3.4") }
        #expect(error.description
            == #""::ffff:1.2.3.4" is not a valid IPv6 address: IPv4-mapped IPv6 addresses are not allowed; use the plain IPv4 address"#)
    }

    @Test func groupsAndBytes() throws {
        let address = try IPv6Address(parsing: "2001:db8::ff00:42:8329")
        #expect(address.groups == [0x2001, 0xdb8, 0, 0, 0, 0xff00, 0x42, 0x8329])
        #expect(IPv6Address(groups: address.groups) == address)
        #expect(address.bytes.count == 16)
        #expect(address.bytes.prefix(4) == [0x20, 0x01, 0x0d, 0xb8])
        #expect(IPv6Address(bytes: address.bytes) == address)
        #expect(IPv6Address(bytes: [1, 2, 3]) == nil)
        #expect(address.high == 0x2001_0db8_0000_0000)
        #expect(address.low == 0x0000_ff00_0042_8329)
    }

    @Test func nextAndPreviousCarryAcrossHalvesAndStopAtEnds() throws {
        let lowFull = IPv6Address(high: 1, low: .max)
        #expect(lowFull.next == IPv6Address(high: 2, low: 0))
        #expect(IPv6Address(high: 2, low: 0).previous == lowFull)
        #expect(IPv6Address(high: .max, low: .max).next == nil)
        #expect(IPv6Address.zero.previous == nil)
        #expect(try IPv6Address(parsing: "2001:db8::ffff").next == IPv6Address(parsing: "2001:db8::1:0"))
        #expect(IPv6Address.zero.advanced(by: -1) == nil)
        #expect(IPv6Address(high: .max, low: .max - 5).advanced(by: 5) == IPv6Address(high: .max, low: .max))
        #expect(IPv6Address(high: .max, low: .max - 5).advanced(by: 6) == nil)
    }

    @Test func arithmeticWithShifts() {
        let zero = IPv6Address.zero
        #expect(zero.adding(1, shiftedLeftBy: 64) == IPv6Address(high: 1, low: 0))
        #expect(zero.adding(1, shiftedLeftBy: 127) == IPv6Address(high: 1 << 63, low: 0))
        #expect(zero.adding(1, shiftedLeftBy: 128) == nil)
        #expect(zero.adding(2, shiftedLeftBy: 127) == nil)
        #expect(zero.adding(0x3, shiftedLeftBy: 63) == IPv6Address(high: 1, low: 1 << 63))
        #expect(IPv6Address(high: 1, low: 0).subtracting(1, shiftedLeftBy: 0) == IPv6Address(high: 0, low: .max))
        #expect(IPv6Address(high: 1, low: 0).distance(from: zero) == nil)
        #expect(IPv6Address(high: 1, low: 5).distance(from: IPv6Address(high: 0, low: .max)) == 6)
        #expect(zero.distance(from: IPv6Address(high: 0, low: 1)) == nil)
    }

    @Test func maskingAndOrder() throws {
        let address = try IPv6Address(parsing: "2001:db8:aaaa:bbbb:cccc:dddd:eeee:ffff")
        #expect(address.masked(prefixLength: 64).description == "2001:db8:aaaa:bbbb::")
        #expect(address.masked(prefixLength: 72).description == "2001:db8:aaaa:bbbb:cc00::")
        #expect(address.masked(prefixLength: 24).description == "2001:d00::")
        #expect(address.masked(prefixLength: 0) == .zero)
        #expect(address.masked(prefixLength: 128) == address)
        #expect(address.filled(prefixLength: 112).description == "2001:db8:aaaa:bbbb:cccc:dddd:eeee:ffff")
        #expect(address.filled(prefixLength: 96).description == "2001:db8:aaaa:bbbb:cccc:dddd:ffff:ffff")
        #expect(try IPv6Address(parsing: "::2") < IPv6Address(parsing: "1::"))
        #expect(try IPv6Address(parsing: "1::") < IPv6Address(parsing: "1::1"))
    }

    @Test func classification() throws {
        #expect(try IPv6Address(parsing: "::1").isLoopback)
        #expect(try IPv6Address(parsing: "fe80::1").isLinkLocal)
        #expect(try IPv6Address(parsing: "febf::1").isLinkLocal)
        #expect(try !IPv6Address(parsing: "fec0::1").isLinkLocal)
        #expect(try IPv6Address(parsing: "ff02::1").isMulticast)
        #expect(IPv6Address.zero.isUnspecified)
        #expect(IPv6Address(high: 0, low: 0xFFFF_0A00_0001).isIPv4Mapped)
    }
}

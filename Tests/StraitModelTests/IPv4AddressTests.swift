import Testing
import StraitModel

@Suite struct IPv4AddressTests {
    @Test(arguments: [
        ("0.0.0.0", UInt32(0)),
        ("255.255.255.255", UInt32.max),
        ("10.0.0.1", 0x0A00_0001),
        ("192.168.1.254", 0xC0A8_01FE),
        ("1.2.3.4", 0x0102_0304),
        ("100.64.0.0", 0x6440_0000),
    ] as [(String, UInt32)])
    func parsesAndFormats(text: String, raw: UInt32) throws {
        let address = try IPv4Address(parsing: text)
        #expect(address.rawValue == raw)
        #expect(address.description == text)
        #expect(IPv4Address(raw) == address)
        #expect(IPv4Address(text) == address)
    }

    @Test(arguments: [
        ("", AddressError.Reason.empty),
        ("10.0.0.256", .octetOutOfRange("256")),
        ("10.0.0.1000", .octetOutOfRange("1000")),
        ("999.0.0.1", .octetOutOfRange("999")),
        ("010.0.0.1", .leadingZero("010")),
        ("10.0.0.01", .leadingZero("01")),
        ("10.00.0.1", .leadingZero("00")),
        ("10.0.0", .wrongOctetCount(3)),
        ("10.0.0.0.1", .wrongOctetCount(5)),
        ("10", .wrongOctetCount(1)),
        ("10..0.1", .emptyOctet),
        (".10.0.0", .emptyOctet),
        ("10.0.0.", .emptyOctet),
        ("10.0.0.1 ", .invalidCharacter(" ")),
        (" 10.0.0.1", .invalidCharacter(" ")),
        ("10.0.0.-1", .invalidCharacter("-")),
        ("10.0.0.+1", .invalidCharacter("+")),
        ("10.0.0.0x1", .invalidCharacter("x")),
        ("10.0.0.1/24", .invalidCharacter("/")),
        ("::1", .invalidCharacter(":")),
        ("1٠.0.0.1", .invalidCharacter("٠")),
    ] as [(String, AddressError.Reason)])
    func rejects(text: String, reason: AddressError.Reason) {
        #expect(throws: AddressError(input: text, kind: .ipv4, reason: reason)) {
            try IPv4Address(parsing: text)
        }
        #expect(IPv4Address(text) == nil)
    }

    @Test func errorMessageNamesInputAndReason() {
        let error = AddressError(input: "10.0.0.256", kind: .ipv4, reason: .octetOutOfRange("256"))
        #expect(error.description == #""10.0.0.256" is not a valid IPv4 address: octet 256 is out of range (0-255)"#)
    }

    @Test func octetsAndBytes() {
        let address = IPv4Address(192, 168, 0, 1)
        #expect(address.octets == [192, 168, 0, 1])
        #expect(address.bytes == [192, 168, 0, 1])
        #expect(IPv4Address(bytes: [192, 168, 0, 1]) == address)
        #expect(IPv4Address(bytes: [1, 2, 3]) == nil)
    }

    @Test func nextAndPreviousStopAtTheEnds() throws {
        #expect(try IPv4Address(parsing: "10.0.0.255").next == IPv4Address(10, 0, 1, 0))
        #expect(try IPv4Address(parsing: "10.0.1.0").previous == IPv4Address(10, 0, 0, 255))
        #expect(IPv4Address(UInt32.max).next == nil)
        #expect(IPv4Address(0).previous == nil)
        #expect(IPv4Address(UInt32.max).previous == IPv4Address(UInt32.max - 1))
        #expect(IPv4Address(0).next == IPv4Address(1))
    }

    @Test func advanced() {
        let base = IPv4Address(10, 0, 0, 0)
        #expect(base.advanced(by: 256) == IPv4Address(10, 0, 1, 0))
        #expect(base.advanced(by: -1) == IPv4Address(9, 255, 255, 255))
        #expect(IPv4Address(255, 255, 255, 0).advanced(by: 255) == IPv4Address(UInt32.max))
        #expect(IPv4Address(255, 255, 255, 0).advanced(by: 256) == nil)
        #expect(IPv4Address(0, 0, 0, 5).advanced(by: -6) == nil)
        #expect(base.advanced(by: Int64.max) == nil)
        #expect(base.advanced(by: Int64.min) == nil)
        #expect(base.advanced(by: 0) == base)
    }

    @Test func orderingAndMasking() {
        #expect(IPv4Address(9, 255, 255, 255) < IPv4Address(10, 0, 0, 0))
        #expect(IPv4Address(10, 1, 2, 3).masked(prefixLength: 16) == IPv4Address(10, 1, 0, 0))
        #expect(IPv4Address(10, 1, 2, 3).filled(prefixLength: 16) == IPv4Address(10, 1, 255, 255))
        #expect(IPv4Address(10, 1, 2, 3).masked(prefixLength: 0) == IPv4Address(0))
        #expect(IPv4Address(10, 1, 2, 3).masked(prefixLength: 32) == IPv4Address(10, 1, 2, 3))
        #expect(IPv4Address(10, 1, 2, 3).filled(prefixLength: 0) == IPv4Address(UInt32.max))
    }

    @Test func classification() {
        #expect(IPv4Address(127, 0, 0, 1).isLoopback)
        #expect(IPv4Address(169, 254, 1, 1).isLinkLocal)
        #expect(IPv4Address(224, 0, 0, 1).isMulticast)
        #expect(IPv4Address(0).isUnspecified)
        #expect(!IPv4Address(10, 0, 0, 1).isLoopback)
    }
}

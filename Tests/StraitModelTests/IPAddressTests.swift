import Foundation
import Testing
import StraitModel

@Suite struct IPAddressTests {
    @Test(arguments: ["10.0.0.1", "0.0.0.0", "::", "2001:db8::1", "fe80::1:2"])
    func roundTrips(text: String) throws {
        let address = try IPAddress(parsing: text)
        #expect(address.description == text)
        #expect(address.family == (text.contains(":") ? .ipv6 : .ipv4))
    }

    @Test func familySpecificErrors() {
        #expect(throws: AddressError(input: "10.0.0.256", kind: .ipv4, reason: .octetOutOfRange("256"))) {
            try IPAddress(parsing: "10.0.0.256")
        }
        #expect(throws: AddressError(input: "::ffff:1.2.3.4", kind: .ipv6, reason: .ipv4Mapped)) {
            try IPAddress(parsing: "::ffff:1.2.3.4")
        }
        #expect(throws: AddressError(input: "", kind: .ip, reason: .empty)) { try IPAddress(parsing: "") }
        #expect(IPAddress("None") == nil)
    }

    @Test func accessorsAndOrder() throws {
        let v4 = try IPAddress(parsing: "10.0.0.1")
        let v6 = try IPAddress(parsing: "::1")
        #expect(v4.ipv4 == IPv4Address(10, 0, 0, 1) && v4.ipv6 == nil)
        #expect(v6.ipv6 == IPv6Address(high: 0, low: 1) && v6.ipv4 == nil)
        #expect(v4.bytes == [10, 0, 0, 1])
        #expect(v6.bytes.count == 16)
        #expect(v4 < v6)
        #expect([v6, v4, try IPAddress(parsing: "1.1.1.1")].sorted().map(\.description) == ["1.1.1.1", "10.0.0.1", "::1"])
        #expect(v4.next?.description == "10.0.0.2")
        #expect(v6.previous?.description == "::")
        #expect(try IPAddress(parsing: "255.255.255.255").next == nil)
        #expect(try IPAddress(parsing: "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff").next == nil)
    }

    @Test func codableAsStrings() throws {
        let addresses = try [IPAddress(parsing: "10.0.0.1"), IPAddress(parsing: "2001:DB8::1")]
        let data = try JSONEncoder().encode(addresses)
        #expect(String(decoding: data, as: UTF8.self) == #"["10.0.0.1","2001:db8::1"]"#)
        #expect(try JSONDecoder().decode([IPAddress].self, from: data) == addresses)
        #expect(try JSONDecoder().decode(IPv4Address.self, from: Data(#""1.2.3.4""#.utf8)) == IPv4Address(1, 2, 3, 4))
        #expect(throws: DecodingError.self) {
            try JSONDecoder().decode(IPv6Address.self, from: Data(#""::ffff:1.2.3.4""#.utf8))
        }
        #expect(throws: DecodingError.self) { try JSONDecoder().decode(IPAddress.self, from: Data("1".utf8)) }
    }
}

import Foundation
import Testing
import StraitModel

@Suite struct CIDRTests {
    @Test(arguments: [
        ("10.0.0.0/8", "10.0.0.0", 8),
        ("10.0.0.5/24", "10.0.0.0", 24),
        ("0.0.0.0/0", "0.0.0.0", 0),
        ("255.255.255.255/32", "255.255.255.255", 32),
        ("192.168.1.129/25", "192.168.1.128", 25),
    ] as [(String, String, Int)])
    func parsesIPv4(text: String, network: String, length: Int) throws {
        let cidr = try IPv4CIDR(parsing: text)
        #expect(cidr.description == text)
        #expect(cidr.network.description == network)
        #expect(cidr.prefixLength == length)
        #expect(cidr.masked.description == "\(network)/\(length)")
    }

    @Test(arguments: [
        ("", AddressError.Reason.empty),
        ("10.0.0.0", .missingPrefixLength),
        ("10.0.0.0/", .invalidPrefixLength("")),
        ("10.0.0.0/33", .prefixLengthOutOfRange(33, maximum: 32)),
        ("10.0.0.0/024", .invalidPrefixLength("024")),
        ("10.0.0.0/-1", .invalidPrefixLength("-1")),
        ("10.0.0.0/2a", .invalidPrefixLength("2a")),
        ("10.0.0.0/1000", .invalidPrefixLength("1000")),
        ("10.0.0.0/8/8", .invalidPrefixLength("8/8")),
        ("10.0.0.256/24", .octetOutOfRange("256")),
        ("010.0.0.0/8", .leadingZero("010")),
        ("/8", .empty),
        ("10.0.0.0 /8", .invalidCharacter(" ")),
    ] as [(String, AddressError.Reason)])
    func rejectsIPv4(text: String, reason: AddressError.Reason) {
        #expect(throws: AddressError(input: text, kind: .ipv4CIDR, reason: reason)) {
            try IPv4CIDR(parsing: text)
        }
    }

    @Test(arguments: [
        ("2001:db8::/32", AddressError.Reason?.none),
        ("::/0", nil),
        ("::1/128", nil),
        ("2001:db8::/129", .prefixLengthOutOfRange(129, maximum: 128)),
        ("::ffff:10.0.0.0/104", .ipv4Mapped),
        ("fe80::1%eth0/64", .zoneNotAllowed),
        ("2001:db8::", .missingPrefixLength),
    ] as [(String, AddressError.Reason?)])
    func parsesIPv6(text: String, reason: AddressError.Reason?) throws {
        if let reason {
            #expect(throws: AddressError(input: text, kind: .ipv6CIDR, reason: reason)) {
                try IPv6CIDR(parsing: text)
            }
        } else {
            #expect(try IPv6CIDR(parsing: text).description == text)
        }
    }

    @Test func networkParsingRefusesHostBits() throws {
        #expect(try IPv4CIDR(networkParsing: "10.0.0.0/24").isNetwork)
        #expect(throws: AddressError(input: "10.0.0.5/24", kind: .ipv4CIDR,
                                     reason: .hostBitsSet(network: "10.0.0.0/24"))) {
            try IPv4CIDR(networkParsing: "10.0.0.5/24")
        }
        #expect(throws: AddressError(input: "2001:db8::1/64", kind: .ipv6CIDR,
                                     reason: .hostBitsSet(network: "2001:db8::/64"))) {
            try IPv6CIDR(networkParsing: "2001:db8::1/64")
        }
        #expect(try IPCIDR(networkParsing: "fd00::/8") == .v6(IPv6CIDR(parsing: "fd00::/8")))
        #expect(throws: AddressError.self) { try IPCIDR(networkParsing: "10.1.0.0/8") }
    }

    @Test func memberInitChecksLength() throws {
        #expect(try IPv4CIDR(address: IPv4Address(10, 0, 0, 0), prefixLength: 8).description == "10.0.0.0/8")
        #expect(throws: AddressError(input: "10.0.0.0/33", kind: .ipv4CIDR,
                                     reason: .prefixLengthOutOfRange(33, maximum: 32))) {
            try IPv4CIDR(address: IPv4Address(10, 0, 0, 0), prefixLength: 33)
        }
        #expect(throws: AddressError.self) { try IPv6CIDR(address: .zero, prefixLength: -1) }
        #expect(IPv4CIDR(host: IPv4Address(10, 0, 0, 1)).description == "10.0.0.1/32")
        #expect(IPv6CIDR(host: .zero).description == "::/128")
    }

    @Test func equalityKeepsHostBits() throws {
        #expect(try IPv4CIDR(parsing: "10.0.0.5/24") != IPv4CIDR(parsing: "10.0.0.0/24"))
        #expect(try IPv4CIDR(parsing: "10.0.0.5/24").masked == IPv4CIDR(parsing: "10.0.0.0/24"))
        let sorted = try ["10.0.1.0/24", "10.0.0.0/24", "10.0.0.0/16", "10.0.0.7/24", "9.0.0.0/8"]
            .map { try IPv4CIDR(parsing: $0) }.sorted().map(\.description)
        #expect(sorted == ["9.0.0.0/8", "10.0.0.0/16", "10.0.0.0/24", "10.0.0.7/24", "10.0.1.0/24"])
    }

    @Test func ipv4Ranges() throws {
        let cidr = try IPv4CIDR(parsing: "10.244.1.0/24")
        #expect(cidr.last.description == "10.244.1.255")
        #expect(cidr.netmask.description == "255.255.255.0")
        #expect(cidr.firstUsable.description == "10.244.1.1")
        #expect(cidr.lastUsable.description == "10.244.1.254")
        #expect(cidr.addressCount == 256)
        #expect(cidr.hostBitCount == 8)

        let p2p = try IPv4CIDR(parsing: "10.0.0.0/31")
        #expect(p2p.firstUsable.description == "10.0.0.0")
        #expect(p2p.lastUsable.description == "10.0.0.1")
        let host = try IPv4CIDR(parsing: "10.0.0.9/32")
        #expect(host.firstUsable == host.address && host.lastUsable == host.address && host.addressCount == 1)
        let all = try IPv4CIDR(parsing: "0.0.0.0/0")
        #expect(all.addressCount == 1 << 32)
        #expect(all.netmask == IPv4Address(0))
        #expect(all.last == IPv4Address(.max))
        #expect(try IPv4CIDR(parsing: "255.255.255.252/30").lastUsable.description == "255.255.255.254")
    }

    @Test func ipv6Ranges() throws {
        let cidr = try IPv6CIDR(parsing: "fd00:10:244:1::/64")
        #expect(cidr.last.description == "fd00:10:244:1:ffff:ffff:ffff:ffff")
        #expect(cidr.netmask.description == "ffff:ffff:ffff:ffff::")
        #expect(cidr.firstUsable.description == "fd00:10:244:1::1")
        #expect(cidr.lastUsable == cidr.last)
        #expect(cidr.addressCount == nil)
        #expect(try IPv6CIDR(parsing: "fd00::/65").addressCount == 1 << 63)
        #expect(try IPv6CIDR(parsing: "fd00::/120").addressCount == 256)
        #expect(try IPv6CIDR(parsing: "fd00::/127").firstUsable.description == "fd00::")
    }

    @Test(arguments: [
        ("10.0.0.0/8", "10.255.255.255", true),
        ("10.0.0.0/8", "11.0.0.0", false),
        ("10.0.0.0/8", "9.255.255.255", false),
        ("10.0.0.5/24", "10.0.0.0", true),
        ("10.0.0.1/32", "10.0.0.1", true),
        ("10.0.0.1/32", "10.0.0.2", false),
        ("0.0.0.0/0", "255.255.255.255", true),
    ] as [(String, String, Bool)])
    func containsIPv4(cidr: String, address: String, expected: Bool) throws {
        #expect(try IPv4CIDR(parsing: cidr).contains(IPv4Address(parsing: address)) == expected)
        #expect(try IPCIDR(parsing: cidr).contains(IPAddress(parsing: address)) == expected)
    }

    @Test(arguments: [
        ("2001:db8::/32", "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff", true),
        ("2001:db8::/32", "2001:db9::", false),
        ("2001:db8::/127", "2001:db8::1", true),
        ("2001:db8::/127", "2001:db8::2", false),
        ("::/0", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", true),
    ] as [(String, String, Bool)])
    func containsIPv6(cidr: String, address: String, expected: Bool) throws {
        #expect(try IPv6CIDR(parsing: cidr).contains(IPv6Address(parsing: address)) == expected)
        #expect(try IPCIDR(parsing: cidr).contains(IPAddress(parsing: address)) == expected)
    }

    @Test func mixedFamiliesNeverMatch() throws {
        #expect(try !IPCIDR(parsing: "0.0.0.0/0").contains(IPAddress(parsing: "::1")))
        #expect(try !IPCIDR(parsing: "::/0").contains(IPAddress(parsing: "10.0.0.1")))
        #expect(try !IPCIDR(parsing: "::/0").overlaps(IPCIDR(parsing: "0.0.0.0/0")))
    }

    @Test(arguments: [
        ("10.0.0.0/8", "10.1.0.0/16", true),
        ("10.1.0.0/16", "10.0.0.0/8", true),
        ("10.0.0.0/24", "10.0.1.0/24", false),
        ("10.0.0.0/23", "10.0.1.0/24", true),
        ("10.0.0.0/32", "10.0.0.0/32", true),
        ("10.0.0.0/32", "10.0.0.1/32", false),
        ("0.0.0.0/0", "192.168.0.0/16", true),
        ("10.0.0.7/24", "10.0.0.200/25", true),
    ] as [(String, String, Bool)])
    func overlaps(a: String, b: String, expected: Bool) throws {
        #expect(try IPv4CIDR(parsing: a).overlaps(IPv4CIDR(parsing: b)) == expected)
        #expect(try IPCIDR(parsing: b).overlaps(IPCIDR(parsing: a)) == expected)
    }

    @Test func containsPrefix() throws {
        let big = try IPv4CIDR(parsing: "10.0.0.0/16")
        #expect(try big.contains(IPv4CIDR(parsing: "10.0.5.0/24")))
        #expect(try big.contains(IPv4CIDR(parsing: "10.0.0.0/16")))
        #expect(try !big.contains(IPv4CIDR(parsing: "10.0.0.0/15")))
        #expect(try !big.contains(IPv4CIDR(parsing: "10.1.0.0/24")))
        #expect(try IPv6CIDR(parsing: "fd00::/8").contains(IPv6CIDR(parsing: "fd12:3456::/32")))
    }

    @Test func subnets() throws {
        let cluster = try IPv4CIDR(parsing: "10.244.0.0/16")
        #expect(cluster.subnet(0, prefixLength: 24)?.description == "10.244.0.0/24")
        #expect(cluster.subnet(3, prefixLength: 24)?.description == "10.244.3.0/24")
        #expect(cluster.subnet(255, prefixLength: 24)?.description == "10.244.255.0/24")
        #expect(cluster.subnet(256, prefixLength: 24) == nil)
        #expect(cluster.subnet(0, prefixLength: 16) == cluster)
        #expect(cluster.subnet(1, prefixLength: 16) == nil)
        #expect(cluster.subnet(0, prefixLength: 15) == nil)
        #expect(cluster.subnet(0, prefixLength: 33) == nil)
        #expect(cluster.subnetCount(prefixLength: 24) == 256)
        #expect(cluster.subnetCount(prefixLength: 8) == nil)
        #expect(try IPv4CIDR(parsing: "10.244.7.9/16").subnet(1, prefixLength: 24)?.description == "10.244.1.0/24")
        let all = try IPv4CIDR(parsing: "0.0.0.0/0")
        #expect(all.subnet((1 << 32) - 1, prefixLength: 32)?.description == "255.255.255.255/32")
        #expect(all.subnet(1 << 32, prefixLength: 32) == nil)
        #expect(all.subnet(1, prefixLength: 1)?.description == "128.0.0.0/1")

        let v6 = try IPv6CIDR(parsing: "fd00:10:244::/48")
        #expect(v6.subnet(0x1234, prefixLength: 64)?.description == "fd00:10:244:1234::/64")
        #expect(v6.subnet(0xffff, prefixLength: 64)?.description == "fd00:10:244:ffff::/64")
        #expect(v6.subnet(0x10000, prefixLength: 64) == nil)
        #expect(v6.subnet(5, prefixLength: 120)?.description == "fd00:10:244::500/120")
        #expect(v6.subnetCount(prefixLength: 112) == nil)
        #expect(v6.subnet(UInt64.max, prefixLength: 128)?.description == "fd00:10:244:0:ffff:ffff:ffff:ffff/128")
        let v6all = try IPv6CIDR(parsing: "::/0")
        #expect(v6all.subnet(1, prefixLength: 1)?.description == "8000::/1")
        #expect(v6all.subnet(2, prefixLength: 1) == nil)
    }

    @Test func addressIndex() throws {
        let cidr = try IPv4CIDR(parsing: "10.0.0.0/30")
        #expect(cidr.address(at: 0)?.description == "10.0.0.0")
        #expect(cidr.address(at: 3)?.description == "10.0.0.3")
        #expect(cidr.address(at: 4) == nil)
        #expect(try cidr.index(of: IPv4Address(parsing: "10.0.0.2")) == 2)
        #expect(try cidr.index(of: IPv4Address(parsing: "10.0.0.4")) == nil)
        let top = try IPv4CIDR(parsing: "255.255.255.0/24")
        #expect(top.address(at: 255)?.description == "255.255.255.255")
        #expect(top.address(at: 256) == nil)
        let v6 = try IPv6CIDR(parsing: "fd00::/64")
        #expect(v6.address(at: UInt64.max)?.description == "fd00::ffff:ffff:ffff:ffff")
        #expect(try v6.index(of: IPv6Address(parsing: "fd00::ffff:ffff:ffff:ffff")) == UInt64.max)
        #expect(try IPv6CIDR(parsing: "fd00::/63").index(of: IPv6Address(parsing: "fd00:0:0:1::")) == nil)
    }

    @Test func nextAndPreviousBlocks() throws {
        #expect(try IPv4CIDR(parsing: "10.0.0.0/24").next?.description == "10.0.1.0/24")
        #expect(try IPv4CIDR(parsing: "10.0.0.77/24").next?.description == "10.0.1.0/24")
        #expect(try IPv4CIDR(parsing: "10.0.1.0/24").previous?.description == "10.0.0.0/24")
        #expect(try IPv4CIDR(parsing: "255.255.255.0/24").next == nil)
        #expect(try IPv4CIDR(parsing: "0.0.0.0/24").previous == nil)
        #expect(try IPv4CIDR(parsing: "0.0.0.0/0").next == nil)
        #expect(try IPv4CIDR(parsing: "0.0.0.0/0").previous == nil)
        #expect(try IPv4CIDR(parsing: "255.255.255.255/32").next == nil)
        #expect(try IPv6CIDR(parsing: "fd00::/64").next?.description == "fd00:0:0:1::/64")
        #expect(try IPv6CIDR(parsing: "ffff:ffff:ffff:ffff::/64").next == nil)
        #expect(try IPv6CIDR(parsing: "::/1").next?.description == "8000::/1")
        #expect(try IPv6CIDR(parsing: "8000::/1").next == nil)
        #expect(try IPv6CIDR(parsing: "::/0").next == nil)
        #expect(try IPv6CIDR(parsing: "::/128").previous == nil)
    }

    @Test func ipCIDRAccessors() throws {
        let v4 = try IPCIDR(parsing: "10.0.0.5/24")
        #expect(v4.family == .ipv4)
        #expect(v4.prefixLength == 24)
        #expect(v4.address.description == "10.0.0.5")
        #expect(v4.network.description == "10.0.0.0")
        #expect(v4.masked.description == "10.0.0.0/24")
        #expect(v4.ipv4 != nil && v4.ipv6 == nil)
        let v6 = try IPCIDR(parsing: "2001:db8::1/64")
        #expect(v6.family == .ipv6 && v6.ipv6 != nil && v6.ipv4 == nil)
        #expect(v4 < v6)
        #expect(throws: AddressError(input: "", kind: .cidr, reason: .empty)) { try IPCIDR(parsing: "") }
        #expect(throws: AddressError(input: "10.0.0.0/33", kind: .ipv4CIDR,
                                     reason: .prefixLengthOutOfRange(33, maximum: 32))) {
            try IPCIDR(parsing: "10.0.0.0/33")
        }
        #expect(IPCIDR("x") == nil)
        #expect(IPv4CIDR("10.0.0.0/8") != nil)
    }

    @Test func codableAsStrings() throws {
        struct Box: Codable, Equatable {
            var v4: IPv4CIDR
            var v6: IPv6CIDR
            var any: [IPCIDR]
        }
        let box = try Box(v4: IPv4CIDR(parsing: "10.0.0.5/24"), v6: IPv6CIDR(parsing: "fd00::/8"),
                          any: [IPCIDR(parsing: "1.2.3.0/24"), IPCIDR(parsing: "::/0")])
        let data = try JSONEncoder().encode(box)
        let object = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        #expect(object["v4"] as? String == "10.0.0.5/24")
        #expect(object["any"] as? [String] == ["1.2.3.0/24", "::/0"])
        #expect(try JSONDecoder().decode(Box.self, from: data) == box)
        let bad = Data(#"{"v4":"10.0.0.0/33","v6":"::/0","any":[]}"#.utf8)
        #expect(throws: DecodingError.self) { try JSONDecoder().decode(Box.self, from: bad) }
    }
}

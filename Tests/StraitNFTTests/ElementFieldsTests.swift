import Testing
import StraitTestSupport
@testable import StraitNFT

/// `Element.Fields`: keys and map values held as the kernel's bytes in place, a list of `Datum`s only for
/// what does not fit; equal by value whichever way they were built, written or read back.
@Suite("StraitNFT element fields")
struct ElementFieldsTests {
    let table = Table(.ip, "fields")
    let table6 = Table(.ip6, "fields")

    /// The keys a sync writes, each as the fields it was built from (as a list, the form before `Fields`).
    static let ipv4Slot: [Datum] = ["10.96.0.10", .proto(.tcp), .port(80), .integer(3)]
    static let ipv6Slot: [Datum] = ["fd00::10", .proto(.udp), .port(53), .integer(65_535)]

    @Test("the keys and values a sync writes are held in place; bytes, bad addresses and long names as a list")
    func forms() {
        #expect(Element.Fields(Self.ipv4Slot).isPacked)
        // 16 + 4 + 4 + 4 bytes: the IPv6 slot key fills 28 of the 32.
        #expect(Element.Fields(Self.ipv6Slot).isPacked)
        #expect(Element.Fields("fd00::1", "10.0.0.1", .port(80)).isPacked)
        #expect(Element.Fields(.ifname("veth0123456789a"), "10.0.0.1", .port(80)).isPacked)
        #expect(Element.Fields(.mark(0x4000)).isPacked)
        #expect(Element.Fields([Datum]()).isPacked)

        #expect(!Element.Fields(.bytes([1, 2, 3])).isPacked)
        #expect(!Element.Fields(.ipv4("10.0.0.300")).isPacked)
        // IFNAMSIZ is 16 with the terminating zero.
        #expect(!Element.Fields(.ifname("veth0123456789ab")).isPacked)
        #expect(!Element.Fields("fd00::1", "fd00::2").isPacked, "32 bytes")
        #expect(!Element.Fields(Array(repeating: Datum.proto(.tcp), count: 7)).isPacked, "seven fields")
        #expect(Element.Fields(Array(repeating: Datum.proto(.tcp), count: 6)).isPacked)
        #expect(MemoryLayout<Element.Fields>.size == 32 && MemoryLayout<ElementValue?>.size == 32)
        #expect(MemoryLayout<Element>.stride == 64, "an element with its key and value in place")
    }

    @Test("fields read back as the values they were built from, however they were built")
    func values() {
        for list in [Self.ipv4Slot, Self.ipv6Slot, [.ifname("eth0"), .mark(7)], [.bytes([9, 9]), .port(1)],
                     [.ipv6("not an address"), .integer(1)]] {
            let fields = Element.Fields(list)
            #expect(Array(fields) == list)
            #expect(fields.count == list.count)
            #expect(fields.description == list.map(\.description).joined(separator: " . "))
        }
        let literal: Element.Fields = ["10.96.0.10", .proto(.tcp), .port(80), .integer(3)]
        let fixed = Element.Fields("10.96.0.10", .proto(.tcp), .port(80), .integer(3))
        #expect(literal == Element.Fields(Self.ipv4Slot) && fixed == literal)
        #expect(literal.hashValue == fixed.hashValue)
        #expect(Element.Fields(fixed.prefix(3)) == ["10.96.0.10", .proto(.tcp), .port(80)])
        #expect(fixed != ["10.96.0.10", .proto(.tcp), .port(80), .integer(4)])
        #expect(Element.Fields("10.96.0.10", .proto(.tcp), .port(80)).appending(.integer(3)) == fixed)
        let overflowing = Element.Fields("fd00::1").appending("fd00::2")
        #expect(overflowing == Element.Fields(["fd00::1", "fd00::2"]) && !overflowing.isPacked)
        #expect(Element.Fields(.bytes([1])).appending(.port(2)) == [.bytes([1]), .port(2)])
        #expect(Element.Fields(.proto(.tcp)) != Element.Fields(.integer(6)), "the kinds differ, not only the bytes")
        let fromList = Element([Datum]([.port(1)]), .data(["10.0.0.1"]))
        #expect(fromList == Element(Element.Fields(.port(1)), .data(["10.0.0.1"])))
        // A timeout is kept beside the value, in the kernel's milliseconds.
        var timed = Element(fixed, .data(["10.0.0.1"]), timeout: .seconds(30))
        #expect(timed.timeout == .milliseconds(30_000) && timed.value == .data(["10.0.0.1"]))
        #expect(timed != Element(fixed, .data(["10.0.0.1"])))
        timed.timeout = nil
        #expect(timed == Element(fixed, .data(["10.0.0.1"])))
        timed.value = nil
        timed.timeout = .milliseconds(5)
        #expect(timed.value == nil && timed.timeout == .milliseconds(5))
    }

    @Test("fields encode as the kernel's concatenation and decode back to equal fields")
    func encoding() throws {
        let cases: [([Datum], [DataType])] = [
            (Self.ipv4Slot, [.ipv4Addr, .inetProto, .inetService, .integer]),
            (Self.ipv6Slot, [.ipv6Addr, .inetProto, .inetService, .integer]),
            ([.proto(.sctp)], [.inetProto]),
            ([.port(8080)], [.inetService]),
            ([.ifname("eth0"), .port(22)], [.ifname, .inetService]),
            (["fd00::1", "fd00::2", .port(80)], [.ipv6Addr, .ipv6Addr, .inetService]),
            ([.bytes([1, 2, 3, 4, 5, 6])], [.etherAddr]),
        ]
        for (list, types) in cases {
            let fields = Element.Fields(list)
            let bytes = try fields.encodedKey()
            #expect(bytes == (try list.encodedKey()), "\(list)")
            #expect(bytes.count == types.kernelLength, "\(list)")
            let decoded = Element.Fields(decoding: bytes, as: types)
            #expect(decoded == fields, "\(list)")
            #expect(decoded.isPacked == fields.isPacked, "\(list)")
        }
        #expect(try Element.Fields(.proto(.tcp), .port(80)).encodedKey() == [6, 0, 0, 0, 0, 80, 0, 0])
    }

    @Test("an interface name too long for the kernel is refused when encoded, naming it, and nothing is committed")
    func overlongName() async throws {
        try await withTestNamespaces(1) { namespaces in
            let connection = try NFTConnection(namespace: namespaces[0].name)
            let set = NFTSet(table: table, name: "names", keyType: [.ifname])
            var tx = Transaction()
            tx.add(table)
            tx.add(set)
            tx.add([Element([.ifname("veth0123456789abcdef")])], to: set)
            #expect {
                try connection.commit(tx)
            } throws: { error in
                let failure = error as? NFTError
                return failure?.operation == "add 1 elements to set names in table ip fields"
                    && failure?.detail?.contains("interface name \"veth0123456789abcdef\"") == true
            }
            #expect(try connection.list(table) == nil, "the batch was refused whole")
        }
    }

    @Test("elements committed to a real kernel read back equal, in place or as a list")
    func kernelRoundTrip() async throws {
        try await withTestNamespaces(1) { namespaces in
            let connection = try NFTConnection(namespace: namespaces[0].name)
            let slots = NFTSet(table: table, name: "slots", keyType: [.ipv4Addr, .inetProto, .inetService, .integer],
                               valueType: [.ipv4Addr, .inetService])
            let slots6 = NFTSet(table: table6, name: "slots", keyType: [.ipv6Addr, .inetProto, .inetService, .integer],
                                valueType: [.ipv6Addr, .inetService])
            let names = NFTSet(table: table, name: "names", keyType: [.ifname, .inetService])
            let pairs6 = NFTSet(table: table6, name: "pairs", keyType: [.ipv6Addr, .ipv6Addr, .inetService])
            let macs = NFTSet(table: table, name: "macs", keyType: [.etherAddr])
            let dispatch = NFTSet(table: table, name: "dispatch", keyType: [.ipv4Addr, .inetProto, .inetService],
                                  dataType: .verdict)
            let chain = Chain(table: table, name: "pool-size-2")
            let wanted: [(NFTSet, [Element])] = [
                (slots, (0..<UInt32(2)).map { slot in
                    Element(Element.Fields("10.96.0.10", .proto(.tcp), .port(80), .integer(slot)),
                            .data(Element.Fields(.ipv4("10.128.0.\(slot + 1)"), .port(8080))))
                }),
                (slots6, [Element(Self.ipv6Slot, .data(["fd00::99", .port(53)]))]),
                (names, [Element([.ifname("veth0123456789a"), .port(22)]), Element([.ifname("lo"), .port(80)])]),
                (pairs6, [Element(["fd00::1", "fd00::2", .port(443)])]),
                (macs, [Element([.bytes([0x02, 0, 0, 0, 0, 0x01])])]),
                (dispatch, [Element("10.96.0.10", .proto(.tcp), .port(80), verdict: .goto(chain.name))]),
            ]
            var tx = Transaction()
            tx.add(table)
            tx.add(table6)
            tx.add(chain)
            for (set, elements) in wanted {
                tx.add(set)
                tx.add(elements, to: set)
            }
            try connection.commit(tx)

            let contents = try #require(try connection.list(table))
            let contents6 = try #require(try connection.list(table6))
            for (set, elements) in wanted {
                let read = (set.table == table ? contents : contents6).elements[set.name] ?? []
                #expect(Set(read) == Set(elements), "\(set)")
                for element in read {
                    #expect(element.key.isPacked == Element.Fields(Array(element.key)).isPacked, "\(element)")
                }
            }
            let slotRead = try #require(contents.elements["slots"]?.first)
            #expect(slotRead.key.isPacked, "read back in place")
            #expect(try #require(contents.elements["macs"]?.first).key.isPacked == false, "arbitrary bytes as a list")
            #expect(try #require(contents6.elements["pairs"]?.first).key.isPacked == false, "36 bytes as a list")
        }
    }
}

import CNftables
import Testing
@testable import StraitNFT

/// The batch as bytes, without a kernel: element messages written by `ElementWriter` read back by
/// libnftnl's own parser as the elements they came from, and a batch that spans chunks.
@Suite("StraitNFT batch encoding")
struct BatchEncodingTests {
    let table = Table(.ip, "t")

    /// Every message of the batch, in order: (header, its bytes).
    func messages(_ buffer: BatchBuffer) -> [UnsafeMutablePointer<nlmsghdr>] {
        var result: [UnsafeMutablePointer<nlmsghdr>] = []
        for chunk in buffer.chunks {
            var offset = 0
            while offset < chunk.used {
                let header = (chunk.start + offset).assumingMemoryBound(to: nlmsghdr.self)
                result.append(header)
                offset += (Int(header.pointee.nlmsg_len) + 3) & ~3
            }
            #expect(offset == chunk.used, "a message straddles the end of its chunk")
        }
        return result
    }

    /// The elements of every NEWSETELEM message, as libnftnl parses them: key bytes, verdict code and
    /// chain, data bytes, timeout.
    struct Parsed: Hashable {
        var set: String
        var key: [UInt8]
        var verdict: Int32?
        var chain: String?
        var data: [UInt8]?
        var timeout: UInt64?
    }

    func parse(_ header: UnsafeMutablePointer<nlmsghdr>) -> [Parsed] {
        let set = nftnl_set_alloc()!
        defer { nftnl_set_free(set) }
        #expect(nftnl_set_elems_nlmsg_parse(header, set) >= 0)
        let name = String(cString: nftnl_set_get_str(set, UInt16(NFTNL_SET_NAME)))
        var parsed: [Parsed] = []
        let iterator = nftnl_set_elems_iter_create(set)!
        defer { nftnl_set_elems_iter_destroy(iterator) }
        while let item = nftnl_set_elems_iter_next(iterator) {
            var length: UInt32 = 0
            let key = nftnl_set_elem_get(item, UInt16(NFTNL_SET_ELEM_KEY), &length)!
            var element = Parsed(set: name, key: Array(UnsafeRawBufferPointer(start: key, count: Int(length))))
            if nftnl_set_elem_is_set(item, UInt16(NFTNL_SET_ELEM_VERDICT)) {
                element.verdict = Int32(bitPattern: nftnl_set_elem_get_u32(item, UInt16(NFTNL_SET_ELEM_VERDICT)))
                if nftnl_set_elem_is_set(item, UInt16(NFTNL_SET_ELEM_CHAIN)) {
                    element.chain = String(cString: nftnl_set_elem_get_str(item, UInt16(NFTNL_SET_ELEM_CHAIN)))
                }
            } else if let data = nftnl_set_elem_get(item, UInt16(NFTNL_SET_ELEM_DATA), &length) {
                element.data = Array(UnsafeRawBufferPointer(start: data, count: Int(length)))
            }
            if nftnl_set_elem_is_set(item, UInt16(NFTNL_SET_ELEM_TIMEOUT)) {
                element.timeout = nftnl_set_elem_get_u64(item, UInt16(NFTNL_SET_ELEM_TIMEOUT))
            }
            parsed.append(element)
        }
        return parsed
    }

    func encode(_ tx: Transaction) throws -> BatchBuffer {
        let buffer = BatchBuffer(firstSequence: 1)
        var encoder = BatchEncoder(buffer: buffer)
        try encoder.encode(tx)
        return buffer
    }

    @Test("elements written straight into the batch parse back, byte for byte, with libnftnl's parser")
    func elementsParseBack() throws {
        var tx = Transaction()
        tx.add([Element(["10.0.0.1", .proto(.tcp), .port(80)], .verdict(.goto("pool-size-3"))),
                Element(["10.0.0.2", .proto(.udp), .port(53)], .verdict(.drop))], toSet: "dispatch", in: table)
        tx.add([Element(["10.0.0.1", .proto(.tcp), .port(80), .integer(7)], .data(["fd00::1", .port(8080)]))],
               toSet: "slots", in: table)
        tx.add([Element(["192.168.1.9"], timeout: .seconds(90)), Element([.ifname("eth0")])], toSet: "plain", in: table)
        // The messages point into the buffer: it must live until they are parsed.
        let buffer = try encode(tx)
        let parsed = withExtendedLifetime(buffer) {
            messages(buffer).filter { $0.pointee.nlmsg_type & 0xff == UInt16(NFT_MSG_NEWSETELEM.rawValue) }
                .flatMap(parse)
        }
        let goto = Int32(-4), drop = Int32(0)
        #expect(parsed == [
            Parsed(set: "dispatch", key: [10, 0, 0, 1, 6, 0, 0, 0, 0, 80, 0, 0], verdict: goto, chain: "pool-size-3"),
            Parsed(set: "dispatch", key: [10, 0, 0, 2, 17, 0, 0, 0, 0, 53, 0, 0], verdict: drop),
            Parsed(set: "slots", key: [10, 0, 0, 1, 6, 0, 0, 0, 0, 80, 0, 0] + withUnsafeBytes(of: UInt32(7)) { Array($0) },
                   data: [0xfd] + [UInt8](repeating: 0, count: 14) + [1, 0x1f, 0x90, 0, 0]),
            Parsed(set: "plain", key: [192, 168, 1, 9], timeout: 90_000),
            Parsed(set: "plain", key: Array("eth0".utf8) + [UInt8](repeating: 0, count: 12)),
        ])
    }

    @Test("a long list is cut into messages under the kernel's 64 KiB list limit, every element once, in order")
    func longList() throws {
        let elements = (0..<20_000).map { index in
            Element([.ipv4("10.\(index >> 16).\(index >> 8 & 255).\(index & 255)"), .proto(.tcp), .port(80),
                     .integer(UInt32(index))], .data([.ipv4("10.244.0.1"), .port(UInt16(index % 60000))]))
        }
        var tx = Transaction()
        tx.add(elements, toSet: "slots", in: table)
        let buffer = try encode(tx)
        defer { withExtendedLifetime(buffer) {} }
        let all = messages(buffer)
        let lists = all.filter { $0.pointee.nlmsg_type & 0xff == UInt16(NFT_MSG_NEWSETELEM.rawValue) }
        #expect(lists.count > 1)
        for header in lists { #expect(header.pointee.nlmsg_len < 64 * 1024) }
        let keys = lists.flatMap(parse).map(\.key)
        #expect(keys == elements.map { try! $0.key.encodedKey() })
        #expect(all.map(\.pointee.nlmsg_seq) == Array(1...UInt32(all.count)))
        #expect(buffer.acknowledgedCount == lists.count)
    }

    @Test("a batch bigger than a chunk spans chunks: no message is split, the iovecs add up to the batch")
    func chunks() {
        let buffer = BatchBuffer(firstSequence: 100)
        defer { withExtendedLifetime(buffer) {} }
        let body = 100 * 1024
        for index in 0..<30 {
            buffer.append("message \(index)") { start, sequence in
                let header = UnsafeMutableRawPointer(start).assumingMemoryBound(to: nlmsghdr.self)
                header.pointee = nlmsghdr(nlmsg_len: UInt32(16 + body), nlmsg_type: 0, nlmsg_flags: 0,
                                          nlmsg_seq: sequence, nlmsg_pid: 0)
            }
        }
        #expect(buffer.chunks.count > 1)
        #expect(buffer.size == 30 * (16 + body))
        let lengths = buffer.withIOVectors { vectors in vectors.map(\.iov_len) }
        #expect(lengths.reduce(0, +) == buffer.size)
        #expect(messages(buffer).map(\.pointee.nlmsg_seq) == Array(100..<130))
        #expect(buffer.operations[129] == "message 29")
    }

    @Test("an element that cannot be encoded fails the commit naming it and its set")
    func invalidElement() {
        var tx = Transaction()
        tx.add([Element(["10.0.0.1"]), Element([.ipv4("10.0.0.300")])], toSet: "plain", in: table)
        #expect {
            _ = try encode(tx)
        } throws: { error in
            let failure = error as? NFTError
            return failure?.operation == "add 2 elements to set plain in table ip t"
                && failure?.detail == "invalid IPv4 address \"10.0.0.300\" in 10.0.0.300"
        }
    }

    @Test("an element larger than a message is refused before it is written, naming it")
    func oversizedElement() {
        var tx = Transaction()
        tx.add([Element([.bytes([UInt8](repeating: 7, count: 70_000))])], toSet: "plain", in: table)
        #expect {
            _ = try encode(tx)
        } throws: { error in
            let failure = error as? NFTError
            return failure?.operation == "add 1 elements to set plain in table ip t"
                && failure?.detail?.hasPrefix("element too large for a message: 0x0707") == true
        }
    }

    @Test("addresses are their bytes: equal however written, printed as the kernel's text")
    func addresses() throws {
        #expect(Datum.ipv6("FD00:0::1") == Datum.ipv6("fd00::1"))
        #expect(Datum.ipv6("FD00:0::1").description == "fd00::1")
        #expect(Datum.ipv4("10.1.2.3") == Datum(ipv4: 0x0a01_0203))
        #expect(try Datum.ipv4("10.1.2.3").encoded() == [10, 1, 2, 3])
        #expect(try Datum.port(8080).encoded() == [0x1f, 0x90])
        #expect(Datum.ipv4("fd00::1").description == "fd00::1")
        #expect(throws: NFTError.self) { try Datum.ipv4("fd00::1").encoded() }
        #expect([Datum](decoding: [10, 0, 0, 1, 6, 0, 0, 0], as: [.ipv4Addr, .inetProto]) == ["10.0.0.1", .proto(.tcp)])
    }
}

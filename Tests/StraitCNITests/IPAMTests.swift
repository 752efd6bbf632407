import Foundation
#if canImport(Glibc)
import Glibc
#endif
import StraitModel
import Testing

@testable import StraitCNI

/// IPAM against a real directory: leases, round-robin, static addresses, exhaustion, GC.
@Suite struct IPAMTests {
    let dataDir = FileManager.default.temporaryDirectory.appendingPathComponent("strait-ipam-\(UUID())").path
    var ipam: IPAM { IPAM(dataDir: dataDir, network: "test") }

    func key(_ id: String, _ ifname: String = "eth0") -> AttachmentKey { AttachmentKey(containerID: id, ifname: ifname) }
    func pool(_ text: String) throws -> AddressPool { try AddressPool(subnet: text) }

    @Test func poolSkipsNetworkGatewayAndBroadcast() throws {
        let pool = try pool("10.244.1.1/24")
        #expect(pool.subnet.description == "10.244.1.0/24")
        #expect(pool.gateway.description == "10.244.1.1")
        #expect(pool.first.description == "10.244.1.2")
        #expect(pool.last.description == "10.244.1.254")
        #expect(pool.capacity == 253)
        #expect(!pool.contains(IPAddress("10.244.1.255")!))
        #expect(!pool.contains(IPAddress("10.244.1.1")!))
    }

    @Test(arguments: ["10.0.0.0/31", "10.0.0.0/32", "fd00::/127", "not-a-cidr", "10.0.0.0/33"])
    func unusableSubnetsAreInvalidConfig(subnet: String) {
        #expect(throws: CNIError.self) { try AddressPool(subnet: subnet) }
        do { _ = try AddressPool(subnet: subnet) } catch { #expect(error.code == .invalidNetworkConfig) }
    }

    @Test func allocatesRoundRobinAndDoesNotReuseAFreedAddressAtOnce() throws {
        let pools = [try pool("10.244.1.0/24")]
        let a = try ipam.allocate(key("a"), pools: pools, requested: [])
        let b = try ipam.allocate(key("b"), pools: pools, requested: [])
        #expect(a.map(\.address.description) == ["10.244.1.2"])
        #expect(b.map(\.address.description) == ["10.244.1.3"])
        try ipam.release(key("a"))
        let c = try ipam.allocate(key("c"), pools: pools, requested: [])
        #expect(c.map(\.address.description) == ["10.244.1.4"])
    }

    @Test func aRetriedAddKeepsItsAddress() throws {
        let pools = [try pool("10.244.1.0/24")]
        let first = try ipam.allocate(key("a"), pools: pools, requested: [])
        let again = try ipam.allocate(key("a"), pools: pools, requested: [])
        #expect(first == again)
        #expect(try ipam.leases().count == 1)
    }

    @Test func dualStackGetsOneAddressPerFamily() throws {
        let pools = [try pool("10.244.1.0/24"), try pool("fd00:10:244:1::/64")]
        let leases = try ipam.allocate(key("a"), pools: pools, requested: [])
        #expect(leases.map(\.address.description) == ["10.244.1.2", "fd00:10:244:1::2"])
    }

    @Test func staticAddressIsHonouredAndRefusedWhenTaken() throws {
        let pools = [try pool("10.244.1.0/24")]
        let wanted = IPAddress("10.244.1.77")!
        #expect(try ipam.allocate(key("a"), pools: pools, requested: [wanted]).first?.address == wanted)
        let before = try ipam.leases()
        #expect(throws: CNIError.self) { try ipam.allocate(key("b"), pools: pools, requested: [wanted]) }
        #expect(throws: CNIError.self) { try ipam.allocate(key("c"), pools: pools, requested: [IPAddress("10.9.9.9")!]) }
        #expect(throws: CNIError.self) { try ipam.allocate(key("d"), pools: pools, requested: [IPAddress("10.244.1.1")!]) }
        #expect(try ipam.leases() == before)
    }

    @Test func exhaustionIsPoolExhaustedAndChangesNothing() throws {
        let pools = [try pool("10.244.1.0/29")]  // .2 … .6: five addresses
        for i in 0..<5 { _ = try ipam.allocate(key("p\(i)"), pools: pools, requested: []) }
        #expect(try ipam.freeCount(in: pools[0]) == 0)
        let before = slotContents()
        do {
            _ = try ipam.allocate(key("extra"), pools: pools, requested: [])
            Issue.record("allocation past the end of the pool succeeded")
        } catch {
            #expect(error.code == .poolExhausted)
        }
        #expect(slotContents() == before)
    }

    @Test func releaseIsIdempotent() throws {
        let pools = [try pool("10.244.1.0/24")]
        _ = try ipam.allocate(key("a"), pools: pools, requested: [])
        #expect(try ipam.release(key("a")).count == 1)
        #expect(try ipam.release(key("a")).isEmpty)
        #expect(try ipam.release(key("never")).isEmpty)
    }

    /// The book is not fsynced: one torn by a crash of an earlier boot starts over (its pods died
    /// with that boot); one torn now is an error naming the file, and the file is left as it was.
    @Test func aCorruptBookIsAnErrorUnlessItPredatesThisBoot() throws {
        let pools = [try pool("10.244.1.0/24")]
        _ = try ipam.allocate(key("a"), pools: pools, requested: [])
        // One allocation wrote the first slot only: torn, no book is left.
        let book = ipam.file.slotPaths[0]
        try Data().write(to: URL(fileURLWithPath: book))
        let error = #expect(throws: CNIError.self) { try ipam.allocate(key("b"), pools: pools, requested: []) }
        #expect(error?.code == .ioFailure)
        #expect(error?.msg.contains(book) == true)
        #expect(try Data(contentsOf: URL(fileURLWithPath: book)).isEmpty)

        // Written before the kernel booted (mtime 1970): every lease in it is stale.
        var times = [timespec(tv_sec: 1000, tv_nsec: 0), timespec(tv_sec: 1000, tv_nsec: 0)]
        #expect(utimensat(AT_FDCWD, book, &times, 0) == 0)
        let fresh = try ipam.allocate(key("b"), pools: pools, requested: [])
        #expect(fresh.map(\.address.description) == ["10.244.1.2"])
        #expect(try ipam.leases().map(\.key) == [key("b")])
    }

    /// Every slot file's content (nil: absent), to show what a call left on disk.
    func slotContents() -> [Data?] {
        ipam.file.slotPaths.map { FileManager.default.contents(atPath: $0) }
    }

    /// Each write goes to the slot not holding the current book: the current one is never touched,
    /// and the generations count up across both.
    @Test func writesAlternateAndNeverTouchTheCurrentBook() throws {
        let pools = [try pool("10.244.1.0/24")]
        _ = try ipam.allocate(key("a"), pools: pools, requested: [])
        let first = try #require(slotContents()[0])
        #expect(slotContents()[1] == nil)
        _ = try ipam.allocate(key("b"), pools: pools, requested: [])
        #expect(slotContents()[0] == first, "the first book stays as it was")
        let second = try #require(slotContents()[1])
        #expect(LeaseBookFile.parse(Array(second))?.generation == 2)
        try ipam.release(key("a"))
        #expect(slotContents()[1] == second)
        #expect(LeaseBookFile.parse(Array(try #require(slotContents()[0])))?.generation == 3)
        #expect(try ipam.leases().map(\.key) == [key("b")])
    }

    /// A plugin killed mid-write leaves the slot it wrote torn (short, or bytes of two books): the
    /// book is then the previous generation, whole, and the next write goes into the torn slot.
    @Test(arguments: ["truncated", "mixed"])
    func aTornWriteLeavesThePreviousBook(_ damage: String) throws {
        let pools = [try pool("10.244.1.0/24")]
        _ = try ipam.allocate(key("a"), pools: pools, requested: [])
        _ = try ipam.allocate(key("b"), pools: pools, requested: [])
        let slot = ipam.file.slotPaths[1]
        var bytes = try #require(FileManager.default.contents(atPath: slot))
        if damage == "truncated" {
            bytes = bytes.prefix(bytes.count / 2)
        } else {
            let at = try #require(bytes.lastIndex(of: UInt8(ascii: "b")))
            bytes[at] = UInt8(ascii: "q")
        }
        try bytes.write(to: URL(fileURLWithPath: slot))
        #expect(try ipam.leases().map(\.key) == [key("a")], "generation 1, whole")
        let kept = slotContents()[0]
        let next = try ipam.allocate(key("c"), pools: pools, requested: [])
        #expect(slotContents()[0] == kept, "the book read is not written over")
        #expect(try ipam.leases().map(\.key) == [key("a"), key("c")])
        #expect(next.map(\.address.description) == ["10.244.1.3"], "round-robin goes on from generation 1")
    }

    /// Earlier versions kept the book in leases.json, replaced by rename: it is read while no slot
    /// holds a book, and removed once one does.
    @Test func aLeaseBookOfAnEarlierVersionIsReadThenReplaced() throws {
        let pools = [try pool("10.244.1.0/24")]
        let legacy = IPAM.LeaseBook(
            leases: [Lease(containerID: "old", ifname: "eth0", address: IPAddress("10.244.1.9")!,
                           subnet: pools[0].subnet)],
            lastReserved: ["10.244.1.0/24": IPAddress("10.244.1.9")!])
        try FileManager.default.createDirectory(atPath: ipam.directory, withIntermediateDirectories: true)
        try legacy.text.write(toFile: ipam.file.legacyPath, atomically: false, encoding: .utf8)
        #expect(try IPAM.inspect(dataDir: dataDir, network: "test").map(\.containerID) == ["old"])
        let granted = try ipam.allocate(key("new"), pools: pools, requested: [])
        #expect(granted.map(\.address.description) == ["10.244.1.10"])
        #expect(try ipam.leases().map(\.containerID) == ["old", "new"])
        #expect(!FileManager.default.fileExists(atPath: ipam.file.legacyPath), "replaced by the slots")
    }

    /// A slot's header must match its body exactly: length and hash.
    @Test func aSlotWhoseLengthOrHashDoesNotMatchIsTorn() {
        let body = Array("{}".utf8)
        let hash = String(LeaseBookFile.fnv1a64(body), radix: 16)
        let hex = String(repeating: "0", count: 16 - hash.count) + hash
        let whole = Array("strait-leases v1 generation=7 bytes=2 fnv1a64=\(hex)\n{}\n   \n".utf8)
        #expect(LeaseBookFile.parse(whole)?.generation == 7)
        #expect(LeaseBookFile.parse(whole)?.text == "{}")
        #expect(LeaseBookFile.parse(Array("strait-leases v1 generation=7 bytes=3 fnv1a64=\(hex)\n{}".utf8)) == nil)
        #expect(LeaseBookFile.parse(Array("strait-leases v1 generation=7 bytes=2 fnv1a64=\(hex)\n{]\n".utf8)) == nil)
        #expect(LeaseBookFile.parse(Array("strait-leases v2 generation=7 bytes=2 fnv1a64=\(hex)\n{}\n".utf8)) == nil)
        #expect(LeaseBookFile.parse(Array("{}".utf8)) == nil)
    }

    @Test func garbageCollectionKeepsExactlyTheValidAttachments() throws {
        let pools = [try pool("10.244.1.0/24")]
        for id in ["a", "b", "c"] { _ = try ipam.allocate(key(id), pools: pools, requested: []) }
        _ = try ipam.allocate(key("a", "net1"), pools: pools, requested: [])
        let released = try ipam.collectGarbage(keeping: [key("b"), key("a", "net1")])
        #expect(Set(released.map(\.containerID)) == ["a", "c"])
        #expect(Set(try ipam.leases().map(\.key)) == [key("b"), key("a", "net1")])
    }
}

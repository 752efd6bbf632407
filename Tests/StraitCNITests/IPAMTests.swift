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
        let before = try Data(contentsOf: URL(fileURLWithPath: ipam.bookPath))
        do {
            _ = try ipam.allocate(key("extra"), pools: pools, requested: [])
            Issue.record("allocation past the end of the pool succeeded")
        } catch {
            #expect(error.code == .poolExhausted)
        }
        #expect(try Data(contentsOf: URL(fileURLWithPath: ipam.bookPath)) == before)
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
        let book = ipam.bookPath
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

    @Test func garbageCollectionKeepsExactlyTheValidAttachments() throws {
        let pools = [try pool("10.244.1.0/24")]
        for id in ["a", "b", "c"] { _ = try ipam.allocate(key(id), pools: pools, requested: []) }
        _ = try ipam.allocate(key("a", "net1"), pools: pools, requested: [])
        let released = try ipam.collectGarbage(keeping: [key("b"), key("a", "net1")])
        #expect(Set(released.map(\.containerID)) == ["a", "c"])
        #expect(Set(try ipam.leases().map(\.key)) == [key("b"), key("a", "net1")])
    }
}

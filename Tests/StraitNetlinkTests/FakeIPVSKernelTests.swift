#if canImport(Glibc)
import Glibc
#endif
import StraitNetlink
import Testing

/// The in-memory IPVS table answers as the kernel does where callers depend on it (rootless).
struct FakeIPVSKernelTests {
    private let web = IPVSService(.tcp, address: "10.96.0.10", port: 80)
    private let first = IPVSDestination(address: "10.244.1.5", port: 8080)

    @Test("a service and a destination added twice fail with EEXIST and change nothing")
    func addedTwice() throws {
        let ipvs = FakeIPVSKernel()
        try ipvs.addService(web)
        try ipvs.addDestination(first, to: web)
        let service = #expect(throws: NetlinkError.self) { try ipvs.addService(web) }
        #expect(service?.errno == EEXIST && service?.code == .objectExists)
        let destination = #expect(throws: NetlinkError.self) { try ipvs.addDestination(first, to: web) }
        #expect(destination?.errno == EEXIST)
        #expect(try ipvs.services() == [web])
        #expect(try ipvs.destinations(of: web).map(\.destination) == [first])
        #expect(ipvs.requests.count == 2)
    }

    @Test("edits and deletes of what is not there fail with ESRCH (service) and ENOENT (destination)")
    func missing() throws {
        let ipvs = FakeIPVSKernel()
        #expect(throws: NetlinkError.self) { try ipvs.updateService(web) }
        let noService = #expect(throws: NetlinkError.self) { try ipvs.deleteService(web) }
        #expect(noService?.errno == ESRCH)
        let orphan = #expect(throws: NetlinkError.self) { try ipvs.addDestination(first, to: web) }
        #expect(orphan?.errno == ESRCH)
        try ipvs.addService(web)
        let noDestination = #expect(throws: NetlinkError.self) { try ipvs.deleteDestination(first, from: web) }
        #expect(noDestination?.errno == ENOENT)
        #expect(try ipvs.destinations(of: IPVSService(.udp, address: "10.96.0.10", port: 80)).isEmpty,
                "a dump of a missing service is empty, as the kernel answers it")
    }

    @Test("deleting a service takes its destinations; addresses read back in inet_ntop's spelling")
    func deleteAndSpelling() throws {
        let ipvs = FakeIPVSKernel()
        let v6 = IPVSService(.tcp, address: "fd00:96:0::0010", port: 80)
        try ipvs.addService(v6)
        try ipvs.addDestination(IPVSDestination(address: "fd00:244:0::5", port: 8080), to: v6)
        #expect(try ipvs.services().map(\.address) == ["fd00:96::10"])
        #expect(try ipvs.destinations(of: v6).map(\.destination.address) == ["fd00:244::5"])
        try ipvs.deleteService(IPVSService(.tcp, address: "fd00:96::10", port: 80))
        #expect(try ipvs.services().isEmpty)
        try ipvs.addService(v6)
        #expect(try ipvs.destinations(of: v6).isEmpty)
    }

    @Test("bad input is refused as IPVSConnection refuses it, naming the object, and changes nothing")
    func badInput() throws {
        let ipvs = FakeIPVSKernel()
        let scheduler = #expect(throws: NetlinkError.self) {
            try ipvs.addService(IPVSService(.tcp, address: "10.96.0.10", port: 80, scheduler: "fastest"))
        }
        #expect(scheduler?.detail?.contains("unknown scheduler \"fastest\"") == true)
        #expect(throws: NetlinkError.self) { try ipvs.addService(IPVSService(.tcp, address: "10.96.0.300", port: 80)) }
        try ipvs.addService(web)
        let family = #expect(throws: NetlinkError.self) {
            try ipvs.addDestination(IPVSDestination(address: "fd00::5", port: 8080), to: web)
        }
        #expect(family?.object == "[fd00::5]:8080 in TCP 10.96.0.10:80")
        #expect(throws: NetlinkError.self) { try ipvs.setTimeouts(IPVSTimeouts(tcp: IPVSTimeouts.maximum + 1)) }
        #expect(try ipvs.destinations(of: web).isEmpty)
        #expect(ipvs.requests == [.addService(web)])
    }

    @Test("connection counts set on a destination read back; an edit keeps them")
    func connections() throws {
        let ipvs = FakeIPVSKernel()
        try ipvs.addService(web)
        try ipvs.addDestination(first, to: web)
        try ipvs.setConnections(of: first, in: web, active: 2, inactive: 1)
        var drained = first
        drained.weight = 0
        try ipvs.updateDestination(drained, in: web)
        let info = try #require(try ipvs.destinations(of: web).first)
        #expect(info.destination.weight == 0 && info.activeConnections == 2 && info.inactiveConnections == 1)
    }
}

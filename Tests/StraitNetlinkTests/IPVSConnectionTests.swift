#if canImport(Glibc)
import Glibc
#endif
import StraitNetlink
import StraitTestSupport
import Testing

// This kernel has no IPVS: the suite runs inside scripts/vm (STRAIT_IN_VM=1), which scripts/test starts.
@Suite("IPVS services and destinations", .enabled(if: inIPVSMachine, "needs IPVS: runs inside scripts/vm"))
struct IPVSConnectionTests {
    private let web = IPVSService(.tcp, address: "10.96.0.10", port: 80)
    private let web6 = IPVSService(.tcp, address: "fd00:96::10", port: 80, scheduler: "wrr",
                                   persistenceTimeout: 600)
    private let dns = IPVSService(.udp, address: "10.96.0.10", port: 53, scheduler: "lc",
                                  persistenceTimeout: 30, persistencePrefixLength: 24)

    @Test("services in both families read back equal, and ipvsadm -Ln shows the same")
    func servicesReadBack() async throws {
        try await withTestNamespaces { namespaces in
            let namespace = namespaces[0]
            let ipvs = try IPVSConnection(namespace: namespace.name)
            #expect(try ipvs.services().isEmpty)
            for service in [web, web6, dns] { try ipvs.addService(service) }

            #expect(Set(try ipvs.services()) == [web, web6, dns])
            let listing = try namespace.ipvsadmListing()
            #expect(listing["TCP 10.96.0.10:80"] == ["rr"])
            #expect(listing["TCP [fd00:96::10]:80"] == ["wrr", "persistent", "600"])
            #expect(listing["UDP 10.96.0.10:53"] == ["lc", "persistent", "30", "mask", "255.255.255.0"])
            #expect(listing.services.count == 3)
        }
    }

    @Test("the schedulers kube-proxy offers: rr, wrr, lc, sh, mh", arguments: ["rr", "wrr", "lc", "sh", "mh"])
    func schedulers(scheduler: String) async throws {
        try await withTestNamespaces { namespaces in
            let ipvs = try IPVSConnection(namespace: namespaces[0].name)
            let v4 = IPVSService(.tcp, address: "10.96.0.20", port: 443, scheduler: scheduler)
            let v6 = IPVSService(.tcp, address: "fd00:96::20", port: 443, scheduler: scheduler)
            try ipvs.addService(v4)
            try ipvs.addService(v6)
            #expect(Set(try ipvs.services().map(\.scheduler)) == [scheduler])
            let listing = try namespaces[0].ipvsadmListing()
            #expect(listing["TCP 10.96.0.20:443"] == [scheduler])
            #expect(listing["TCP [fd00:96::20]:443"] == [scheduler])
        }
    }

    @Test("editing a service changes its scheduler and persistence, and can end persistence")
    func editService() async throws {
        try await withTestNamespaces { namespaces in
            let namespace = namespaces[0]
            let ipvs = try IPVSConnection(namespace: namespace.name)
            try ipvs.addService(web)
            try ipvs.addService(web6)

            var edited = web
            edited.scheduler = "sh"
            edited.persistenceTimeout = 10800
            try ipvs.updateService(edited)
            var edited6 = web6
            edited6.persistenceTimeout = nil
            edited6.scheduler = "mh"
            try ipvs.updateService(edited6)

            #expect(Set(try ipvs.services()) == [edited, edited6])
            let listing = try namespace.ipvsadmListing()
            #expect(listing["TCP 10.96.0.10:80"] == ["sh", "persistent", "10800"])
            #expect(listing["TCP [fd00:96::10]:80"] == ["mh"])
        }
    }

    @Test("destinations in both families: added, weights edited, deleted, read back equal")
    func destinations() async throws {
        try await withTestNamespaces { namespaces in
            let namespace = namespaces[0]
            let ipvs = try IPVSConnection(namespace: namespace.name)
            try ipvs.addService(web)
            try ipvs.addService(web6)
            let first = IPVSDestination(address: "10.1.0.2", port: 8080)
            let second = IPVSDestination(address: "10.1.0.3", port: 8080, weight: 5, upperThreshold: 100,
                                         lowerThreshold: 50)
            let first6 = IPVSDestination(address: "fd00:1::2", port: 8080, weight: 2)
            try ipvs.addDestination(first, to: web)
            try ipvs.addDestination(second, to: web)
            try ipvs.addDestination(first6, to: web6)

            let read = try ipvs.destinations(of: web)
            #expect(Set(read.map(\.destination)) == [first, second])
            #expect(read.allSatisfy { $0.activeConnections == 0 && $0.inactiveConnections == 0 })
            #expect(try ipvs.destinations(of: web6).map(\.destination) == [first6])
            var listing = try namespace.ipvsadmListing()
            #expect(Set(listing.destinations["TCP 10.96.0.10:80"] ?? []) == [
                ["10.1.0.2:8080", "Masq", "1", "0", "0"], ["10.1.0.3:8080", "Masq", "5", "0", "0"],
            ])
            #expect(listing.destinations["TCP [fd00:96::10]:80"] == [["[fd00:1::2]:8080", "Masq", "2", "0", "0"]])

            var drained = second
            drained.weight = 0
            try ipvs.updateDestination(drained, in: web)
            var heavier = first6
            heavier.weight = 7
            try ipvs.updateDestination(heavier, in: web6)
            #expect(Set(try ipvs.destinations(of: web).map(\.destination)) == [first, drained])
            #expect(try ipvs.destinations(of: web6).map(\.destination) == [heavier])
            listing = try namespace.ipvsadmListing()
            #expect(listing.destinations["TCP 10.96.0.10:80"]?.contains(["10.1.0.3:8080", "Masq", "0", "0", "0"])
                    == true)
            #expect(listing.destinations["TCP [fd00:96::10]:80"] == [["[fd00:1::2]:8080", "Masq", "7", "0", "0"]])

            try ipvs.deleteDestination(first, from: web)
            try ipvs.deleteDestination(heavier, from: web6)
            #expect(try ipvs.destinations(of: web).map(\.destination) == [drained])
            #expect(try ipvs.destinations(of: web6).isEmpty)
            listing = try namespace.ipvsadmListing()
            #expect(listing.destinations["TCP 10.96.0.10:80"] == [["10.1.0.3:8080", "Masq", "0", "0", "0"]])

            try ipvs.deleteService(web)
            #expect(try ipvs.services() == [web6])
            try ipvs.flush()
            #expect(try ipvs.services().isEmpty)
            #expect(try namespace.ipvsadmListing().services.isEmpty)
        }
    }

    @Test("a destination deleted by hand with ipvsadm -d is gone from the next dump")
    func handDeletion() async throws {
        try await withTestNamespaces { namespaces in
            let namespace = namespaces[0]
            let ipvs = try IPVSConnection(namespace: namespace.name)
            try ipvs.addService(web6)
            let kept = IPVSDestination(address: "fd00:1::2", port: 8080)
            let removed = IPVSDestination(address: "fd00:1::3", port: 8080)
            try ipvs.addDestination(kept, to: web6)
            try ipvs.addDestination(removed, to: web6)
            #expect(try ipvs.destinations(of: web6).count == 2)

            try namespace.run(["ipvsadm", "-d", "-t", "[fd00:96::10]:80", "-r", "[fd00:1::3]:8080"])
            #expect(try ipvs.destinations(of: web6).map(\.destination) == [kept])
            // And a service added by hand is listed like one of ours.
            try namespace.run(["ipvsadm", "-A", "-u", "10.96.0.53:53", "-s", "wrr"])
            #expect(try ipvs.services().contains(IPVSService(.udp, address: "10.96.0.53", port: 53, scheduler: "wrr")))
        }
    }

    @Test("bad input is refused with an error naming it, and changes nothing")
    func badInput() async throws {
        try await withTestNamespaces { namespaces in
            let namespace = namespaces[0]
            let ipvs = try IPVSConnection(namespace: namespace.name)
            try ipvs.addService(web)
            try ipvs.addDestination(IPVSDestination(address: "10.1.0.2", port: 8080), to: web)
            let before = try namespace.run(["ipvsadm", "-Sn"])

            var unknown = web
            unknown.scheduler = "fastest"
            let scheduler = try #require(throws: NetlinkError.self) { try ipvs.updateService(unknown) }
            #expect(scheduler.description
                    == "edit IPVS service \"TCP 10.96.0.10:80\": unknown scheduler \"fastest\" (known: "
                    + "dh, fo, lblc, lblcr, lc, mh, nq, ovf, rr, sed, sh, twos, wlc, wrr)")
            #expect(scheduler.errno == EINVAL)

            let zeroPort = try #require(throws: NetlinkError.self) {
                try ipvs.addService(IPVSService(.tcp, address: "10.96.0.11", port: 0))
            }
            #expect(zeroPort.description == "add IPVS service \"TCP 10.96.0.11:0\": port 0 is not a service port")

            let zeroDestination = try #require(throws: NetlinkError.self) {
                try ipvs.addDestination(IPVSDestination(address: "10.1.0.3", port: 0), to: web)
            }
            #expect(zeroDestination.description.contains("port 0 is not a destination port"))
            #expect(zeroDestination.object == "10.1.0.3:0 in TCP 10.96.0.10:80")

            let mixed = try #require(throws: NetlinkError.self) {
                try ipvs.addDestination(IPVSDestination(address: "fd00:1::2", port: 8080), to: web)
            }
            #expect(mixed.description.contains("different address families"))

            let notAnAddress = try #require(throws: NetlinkError.self) {
                try ipvs.addService(IPVSService(.tcp, address: "10.96.0.300", port: 80))
            }
            #expect(notAnAddress.description.contains("\"10.96.0.300\" is not an IP address"))

            let negative = try #require(throws: NetlinkError.self) {
                try ipvs.updateDestination(IPVSDestination(address: "10.1.0.2", port: 8080, weight: -1), in: web)
            }
            #expect(negative.description.contains("weight -1 is negative"))

            let timeout = try #require(throws: NetlinkError.self) {
                try ipvs.addService(IPVSService(.tcp, address: "10.96.0.12", port: 80, persistenceTimeout: 0))
            }
            #expect(timeout.description.contains("persistence timeout 0"))

            #expect(try namespace.run(["ipvsadm", "-Sn"]) == before, "a refused request changed the kernel")
        }
    }

    @Test("the kernel's refusals name the operation, the object and errno")
    func kernelRefusals() async throws {
        try await withTestNamespaces { namespaces in
            let ipvs = try IPVSConnection(namespace: namespaces[0].name)
            try ipvs.addService(web)
            let duplicate = try #require(throws: NetlinkError.self) { try ipvs.addService(web) }
            #expect(duplicate.errno == EEXIST)
            #expect(duplicate.description == "add IPVS service \"TCP 10.96.0.10:80\": File exists (EEXIST)")

            let missing = try #require(throws: NetlinkError.self) { try ipvs.deleteService(web6) }
            #expect(missing.errno == ESRCH)
            #expect(missing.description.hasPrefix("delete IPVS service \"TCP [fd00:96::10]:80\": "))

            let absent = IPVSDestination(address: "10.1.0.9", port: 8080)
            let missingDestination = try #require(throws: NetlinkError.self) {
                try ipvs.deleteDestination(absent, from: web)
            }
            #expect(missingDestination.errno == ENOENT)
            #expect(missingDestination.operation == "delete IPVS destination")

            let missingEdit = try #require(throws: NetlinkError.self) {
                try ipvs.updateDestination(absent, in: web)
            }
            #expect(missingEdit.errno == ENOENT)
            #expect(missingEdit.object == "10.1.0.9:8080 in TCP 10.96.0.10:80")

            let noService = try #require(throws: NetlinkError.self) {
                try ipvs.addDestination(absent, to: dns)
            }
            #expect(noService.errno == ESRCH)
            #expect(noService.description.hasPrefix("add IPVS destination \"10.1.0.9:8080 in UDP 10.96.0.10:53\": "))
            // The kernel answers a dump of a missing service's destinations with nothing, not an error.
            #expect(try ipvs.destinations(of: dns).isEmpty)
            #expect(try ipvs.services() == [web])
        }
    }

    @Test("each network namespace has its own IPVS table")
    func namespacesAreSeparate() async throws {
        try await withTestNamespaces(2) { namespaces in
            let first = try IPVSConnection(namespace: namespaces[0].name)
            let second = try IPVSConnection(namespace: namespaces[1].name)
            try first.addService(web)
            #expect(try first.services() == [web])
            #expect(try second.services().isEmpty)
            #expect(try namespaces[1].ipvsadmListing().services.isEmpty)
        }
    }
}

import StraitModel
import StraitNetlink
import StraitNFT
import StraitProxy
import StraitProxyIPVS
import StraitTestSupport
import Testing

/// The IPVS mode's backend against `FakeIPVSKernel`, on any kernel: the device and the helper table
/// are real (in a test namespace), the virtual services in memory, so what the backend sends is
/// checked request by request. The same behaviour against the real IPVS: `IPVSPartialSyncTests`,
/// `IPVSEndToEndTests` (scripts/vm).
struct IPVSBackendFakeIPVSTests {
    private static let options = ProxyOptions(clusterCIDRs: [IPCIDR("10.244.0.0/16")!])

    private static func entry(_ index: Int, endpoints: [String]) -> ServicePortEntry {
        let name = ServicePortName(namespace: "default", name: "svc\(index)", port: "http", protocol: .tcp)
        let pool = endpoints.map { ProxyEndpoint(address: IPAddress($0)!, port: 8080) }
        let entry = ServicePortEntry(name: name, port: 80, clusterIPs: [IPAddress("10.96.0.\(10 + index)")!],
                                     allEndpoints: pool)
        return entry.decided(options: options)
    }

    private static func service(_ index: Int) -> IPVSService { IPVSService(address: "10.96.0.\(10 + index)", port: 80) }

    private static func server(_ address: String, weight: Int32 = 1) -> IPVSDestination {
        IPVSDestination(address: address, port: 8080, weight: weight)
    }

    /// The fake's table as "service -> sorted real servers".
    private func table(_ ipvs: FakeIPVSKernel) throws -> [String: [String]] {
        var result: [String: [String]] = [:]
        for service in try ipvs.services() {
            result[service.description] = try ipvs.destinations(of: service).map {
                "\($0.destination) w\($0.destination.weight)"
            }.sorted()
        }
        return result
    }

    /// The backend in `namespace`. This machine's kernel has no dummy driver, so `kube-ipvs0` is made
    /// beforehand as one end of a veth pair (the backend takes a device that is there as it is).
    private func backend(_ namespace: TestNamespace, _ ipvs: FakeIPVSKernel) throws -> IPVSBackend {
        _ = try namespace.run(["ip", "link", "add", "kube-ipvs0", "type", "veth", "peer", "name", "kube-ipvs0-peer"])
        return try IPVSBackend(family: .ipv4, settings: IPVSSettings(options: Self.options, namespace: namespace.name),
                        ipvs: ipvs, nft: NFTConnection(namespace: namespace.name))
    }

    @Test("a full sync of a small table makes every virtual service and real server, the addresses, the table")
    func fullSync() async throws {
        try await withTestNamespaces { namespaces in
            let namespace = namespaces[0], ipvs = FakeIPVSKernel()
            let backend = try backend(namespace, ipvs)
            try await backend.sync(from: nil, to: ServiceTable([
                Self.entry(0, endpoints: ["10.244.1.5", "10.244.1.6"]), Self.entry(1, endpoints: ["10.244.2.5"])]))

            #expect(try table(ipvs) == ["TCP 10.96.0.10:80": ["10.244.1.5:8080 w1", "10.244.1.6:8080 w1"],
                                        "TCP 10.96.0.11:80": ["10.244.2.5:8080 w1"]])
            #expect(ipvs.tracksConnections)
            let summary = try #require(await backend.lastSync)
            #expect(summary.full && summary.requests == 5 && summary.addressesAdded == 2)
            #expect(summary.phases.total > .zero)
            let device = try namespace.run(["ip", "-4", "-o", "addr", "show", "dev", "kube-ipvs0"])
            #expect(device.contains("10.96.0.10/32") && device.contains("10.96.0.11/32"), "\(device)")
            let hairpin = try namespace.run(["nft", "list", "set", "ip", "strait-ipvs", "hairpin"])
            #expect(hairpin.contains("10.244.2.5 . 10.244.2.5 . tcp . 8080"), "\(hairpin)")
        }
    }

    @Test("a full sync restores a real server deleted by hand, with that one request only")
    func repairsHandDeletion() async throws {
        try await withTestNamespaces { namespaces in
            let namespace = namespaces[0], ipvs = FakeIPVSKernel()
            let backend = try backend(namespace, ipvs)
            let table = ServiceTable([Self.entry(0, endpoints: ["10.244.1.5", "10.244.1.6"]),
                                      Self.entry(1, endpoints: ["10.244.2.5"])])
            try await backend.sync(from: nil, to: table)
            let before = try self.table(ipvs)
            try ipvs.deleteDestination(Self.server("10.244.1.6"), from: Self.service(0))
            // A service made by hand at a service address of ours goes too.
            let stray = IPVSService(.udp, address: "10.96.0.11", port: 53)
            try ipvs.addService(stray)
            ipvs.clearRequests()

            try await backend.sync(from: nil, to: table)
            #expect(ipvs.requests == [.deleteService(stray),
                                      .addDestination(Self.server("10.244.1.6"), Self.service(0))])
            #expect(try self.table(ipvs) == before)
            #expect(await backend.lastSync?.requests == 2)
        }
    }

    @Test("a partial sync sends only the changed port's requests; a server in use drains at weight 0")
    func partialSync() async throws {
        try await withTestNamespaces { namespaces in
            let namespace = namespaces[0], ipvs = FakeIPVSKernel()
            let backend = try backend(namespace, ipvs)
            let first = ServiceTable([Self.entry(0, endpoints: ["10.244.1.5", "10.244.1.6"]),
                                      Self.entry(1, endpoints: ["10.244.2.5"]),
                                      Self.entry(2, endpoints: ["10.244.3.5"])])
            try await backend.sync(from: nil, to: first)
            ipvs.clearRequests()

            let second = first.replacing([Self.entry(1, endpoints: ["10.244.2.6"])])
            try await backend.sync(from: first, to: second)
            #expect(ipvs.requests == [.deleteDestination(Self.server("10.244.2.5"), Self.service(1)),
                                      .addDestination(Self.server("10.244.2.6"), Self.service(1))])
            #expect(await backend.lastSync?.full == false)

            // 10.244.1.6 still carries a connection: it stays at weight 0 until it carries none.
            try ipvs.setConnections(of: Self.server("10.244.1.6"), in: Self.service(0), active: 1, inactive: 0)
            ipvs.clearRequests()
            let third = second.replacing([Self.entry(0, endpoints: ["10.244.1.5"])])
            try await backend.sync(from: second, to: third)
            #expect(ipvs.requests == [.updateDestination(Self.server("10.244.1.6", weight: 0), Self.service(0))])
            #expect(try table(ipvs)["TCP 10.96.0.10:80"] == ["10.244.1.5:8080 w1", "10.244.1.6:8080 w0"])

            try ipvs.setConnections(of: Self.server("10.244.1.6"), in: Self.service(0), active: 0, inactive: 0)
            ipvs.clearRequests()
            try await backend.sync(from: third, to: third)
            #expect(ipvs.requests == [.deleteDestination(Self.server("10.244.1.6", weight: 0), Self.service(0))])
            #expect(try table(ipvs)["TCP 10.96.0.10:80"] == ["10.244.1.5:8080 w1"])
        }
    }
}

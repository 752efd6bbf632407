import StraitModel
import StraitNetlink
import StraitProxy
import StraitProxyIPVS
import Testing

/// The translation and the differences, as plain values (no kernel: these run everywhere).
@Suite("IPVS mode: plans to virtual services, and the differences between two sets")
struct IPVSVirtualServersTests {
    private func address(_ text: String) -> IPAddress { IPAddress(text)! }
    private func endpoint(_ text: String, local: Bool = false) -> ProxyEndpoint {
        ProxyEndpoint(address: address(text), port: 8080, isLocal: local)
    }

    /// A NodePort Service with an external IP: cluster traffic to both endpoints, external to the local one.
    private var web: ServicePortPlan {
        ServicePortPlan(
            name: ServicePortName(namespace: "default", name: "web", port: "http", protocol: .tcp), family: .ipv4,
            port: 80, clusterIPs: [address("10.96.0.10")], nodePort: 30080, externalIPs: [address("192.0.2.10")],
            affinityTimeout: 10800, clusterPool: [endpoint("10.244.1.5"), endpoint("10.244.2.7", local: true)],
            localPool: [endpoint("10.244.2.7", local: true)], clusterIPTraffic: .forward(.cluster),
            externalTraffic: .forward(.local))
    }

    @Test("cluster IP, external IP and each node address of the family get a virtual service with their pool")
    func translation() throws {
        let servers = IPVSVirtualServers(plans: [web], scheduler: "wrr",
                                         nodeAddresses: [address("192.168.1.2"), address("fd00::2")])
        let services = servers.services.values.sorted { "\($0)" < "\($1)" }
        #expect(services.map(\.description) == ["TCP 10.96.0.10:80", "TCP 192.0.2.10:80", "TCP 192.168.1.2:30080"])
        #expect(services.allSatisfy { $0.scheduler == "wrr" && $0.persistenceTimeout == 10800 })
        func pool(_ service: String) -> Set<String> {
            let key = servers.services.first { $0.value.description == service }!.key
            return Set(servers.destinations[key]!.values.map(\.description))
        }
        #expect(pool("TCP 10.96.0.10:80") == ["10.244.1.5:8080", "10.244.2.7:8080"])
        #expect(pool("TCP 192.0.2.10:80") == ["10.244.2.7:8080"])
        #expect(pool("TCP 192.168.1.2:30080") == ["10.244.2.7:8080"])
    }

    @Test("a rejected or dropped address keeps its virtual service without real servers")
    func noEndpoints() throws {
        var plan = web
        plan.clusterIPTraffic = .reject
        plan.externalTraffic = .drop
        let servers = IPVSVirtualServers(plans: [plan], scheduler: "rr", nodeAddresses: [address("192.168.1.2")])
        #expect(servers.services.count == 3)
        #expect(servers.destinations.values.allSatisfy { $0.isEmpty })
    }

    @Test("the differences: only what changed, services before their real servers")
    func differences() throws {
        let nodes = [address("192.168.1.2")]
        let before = IPVSVirtualServers(plans: [web], scheduler: "rr", nodeAddresses: nodes)
        #expect(IPVSChanges(from: before, to: before).isEmpty)

        var plan = web
        plan.clusterPool = [endpoint("10.244.2.7", local: true), endpoint("10.244.3.9")]
        plan.affinityTimeout = nil
        plan.externalIPs = []
        let after = IPVSVirtualServers(plans: [plan], scheduler: "rr", nodeAddresses: nodes)
        let changes = IPVSChanges(from: before, to: after)
        #expect(changes.deletedServices.map(\.description) == ["TCP 192.0.2.10:80"])
        #expect(changes.deletedDestinations.map(\.destination.description) == ["10.244.1.5:8080"])
        #expect(changes.updatedServices.map(\.description) == ["TCP 10.96.0.10:80", "TCP 192.168.1.2:30080"])
        #expect(changes.addedDestinations.map { "\($0.destination) in \($0.service)" }
                == ["10.244.3.9:8080 in TCP 10.96.0.10:80"])
        #expect(changes.addedServices.isEmpty && changes.updatedDestinations.isEmpty)
        #expect(changes.count == 5)
        #expect(IPVSChanges(from: after, to: after).isEmpty)
    }

    @Test("a changed weight is an edit of that real server only")
    func weightEdit() throws {
        let service = IPVSService(.udp, address: "fd00:96::53", port: 53)
        var current = IPVSVirtualServers()
        current.insert(service, [IPVSDestination(address: "fd00:244::5", port: 53, weight: 1)])
        var desired = IPVSVirtualServers()
        desired.insert(service, [IPVSDestination(address: "fd00:244::5", port: 53, weight: 0)])
        let changes = IPVSChanges(from: current, to: desired)
        #expect(changes.updatedDestinations.map(\.destination.weight) == [0])
        #expect(changes.count == 1)
    }
}

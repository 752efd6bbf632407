import StraitModel
import StraitNetlink
import StraitProxy
import StraitProxyIPVS
import StraitTestSupport
import Foundation
import Testing

/// Whether this process runs inside scripts/vm, whose kernel has IPVS (this machine's has none).
private let inIPVSMachine = ProcessInfo.processInfo.environment["STRAIT_IN_VM"] == "1"

// This kernel has no IPVS: the suite runs inside scripts/vm (STRAIT_IN_VM=1), which scripts/test starts.
@Suite("IPVS mode: differences applied to a kernel", .enabled(if: inIPVSMachine, "needs IPVS: runs inside scripts/vm"))
struct IPVSChangesKernelTests {
    private func plan(_ endpoints: [String]) -> ServicePortPlan {
        ServicePortPlan(
            name: ServicePortName(namespace: "default", name: "web", port: "", protocol: .tcp), family: .ipv6,
            port: 80, clusterIPs: [IPAddress("fd00:96::10")!], nodePort: 30080,
            clusterPool: endpoints.map { ProxyEndpoint(address: IPAddress($0)!, port: 8080) },
            clusterIPTraffic: .forward(.cluster), externalTraffic: .forward(.cluster))
    }

    /// The kernel's virtual services, read back.
    private func dump(_ ipvs: IPVSConnection) throws -> IPVSVirtualServers {
        try IPVSVirtualServers(kernel: ipvs.services()) { try ipvs.destinations(of: $0).map(\.destination) }
    }

    @Test("applied differences read back equal; a full sync repairs a real server ipvsadm deleted or edited")
    func applyAndRepair() async throws {
        try await withTestNamespaces { namespaces in
            let namespace = namespaces[0]
            let ipvs = try IPVSConnection(namespace: namespace.name)
            let nodes = [IPAddress("fd00::2")!]
            let first = IPVSVirtualServers(plans: [plan(["fd00:244::5", "fd00:244::6"])], scheduler: "rr",
                                           nodeAddresses: nodes)
            try IPVSChanges(from: IPVSVirtualServers(), to: first).apply(to: ipvs)
            #expect(try dump(ipvs) == first)

            let second = IPVSVirtualServers(plans: [plan(["fd00:244::6", "fd00:244::7"])], scheduler: "rr",
                                            nodeAddresses: nodes)
            let changes = IPVSChanges(from: first, to: second)
            #expect(changes.count == 4, "one real server out and one in, at each of two virtual services")
            try changes.apply(to: ipvs)
            #expect(try dump(ipvs) == second)

            try namespace.run(["ipvsadm", "-d", "-t", "[fd00:96::10]:80", "-r", "[fd00:244::7]:8080"])
            try namespace.run(["ipvsadm", "-e", "-t", "[fd00:96::10]:80", "-r", "[fd00:244::6]:8080", "-m", "-w", "5"])
            let repair = IPVSChanges(from: try dump(ipvs), to: second)
            #expect(repair.addedDestinations.map(\.destination.description) == ["[fd00:244::7]:8080"])
            #expect(repair.updatedDestinations.map { "\($0.destination) weight \($0.destination.weight)" }
                    == ["[fd00:244::6]:8080 weight 1"])
            #expect(repair.count == 2)
            try repair.apply(to: ipvs)
            #expect(try dump(ipvs) == second)
        }
    }
}

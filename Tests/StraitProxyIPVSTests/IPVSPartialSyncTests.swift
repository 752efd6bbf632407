import Foundation
import StraitModel
import StraitNetlink
import StraitProxy
import StraitProxyIPVS
import StraitTestSupport
import Testing

/// Whether this process runs inside scripts/vm, whose kernel has IPVS (this machine's has none).
private let inIPVSMachine = ProcessInfo.processInfo.environment["STRAIT_IN_VM"] == "1"

// This kernel has no IPVS: the suite runs inside scripts/vm (STRAIT_IN_VM=1), which scripts/test starts.
@Suite("IPVS mode: a partial sync touches only the ports that changed",
       .enabled(if: inIPVSMachine, "needs IPVS: runs inside scripts/vm"))
struct IPVSPartialSyncTests {
    private static func entry(_ index: Int, endpoints: [String]) -> ServicePortEntry {
        let name = ServicePortName(namespace: "default", name: "svc\(index)", port: "http", protocol: .tcp)
        let pool = endpoints.map { ProxyEndpoint(address: IPAddress($0)!, port: 8080) }
        let entry = ServicePortEntry(name: name, port: 80, clusterIPs: [IPAddress("10.96.0.\(10 + index)")!],
                                     allEndpoints: pool)
        return entry.decided(options: ProxyOptions(clusterCIDRs: [IPCIDR("10.244.0.0/16")!]))
    }

    /// The hairpin set's elements as `nft` lists them ("10.244.1.5 . 10.244.1.5 . tcp . 8080").
    private func hairpin(_ namespace: TestNamespace) throws -> Set<String> {
        let listing = try namespace.run(["nft", "list", "set", "ip", "strait-ipvs", "hairpin"])
        guard let open = listing.range(of: "elements = {"), let close = listing[open.upperBound...].firstIndex(of: "}")
        else { return [] }
        return Set(listing[open.upperBound..<close].split(separator: ",").map {
            $0.split(whereSeparator: \.isWhitespace).joined(separator: " ")
        })
    }

    @Test("an endpoint change: two IPVS requests and hairpin elements, no rule rewrite; a new Service rewrites rules")
    func endpointChange() async throws {
        try await withTestNamespaces { namespaces in
            let namespace = namespaces[0]
            let backend = try IPVSBackend(family: .ipv4, settings: IPVSSettings(
                options: ProxyOptions(clusterCIDRs: [IPCIDR("10.244.0.0/16")!]), namespace: namespace.name))
            let first = ServiceTable([Self.entry(0, endpoints: ["10.244.1.5", "10.244.1.6"]),
                                      Self.entry(1, endpoints: ["10.244.2.5"])])
            try await backend.sync(from: nil, to: first)
            #expect(try hairpin(namespace) == ["10.244.1.5 . 10.244.1.5 . tcp . 8080",
                                               "10.244.1.6 . 10.244.1.6 . tcp . 8080",
                                               "10.244.2.5 . 10.244.2.5 . tcp . 8080"])
            let listChain = ["nft", "-a", "list", "chain", "ip", "strait-ipvs", "prerouting"]
            let rulesBefore = try namespace.run(listChain)

            let second = ServiceTable([Self.entry(0, endpoints: ["10.244.1.5", "10.244.1.7"]),
                                       Self.entry(1, endpoints: ["10.244.2.5"])])
            try await backend.sync(from: first, to: second)
            let summary = await backend.lastSync
            #expect(summary?.full == false && summary?.requests == 2 && summary?.rewroteRules == false,
                    "\(String(describing: summary))")
            #expect(try hairpin(namespace) == ["10.244.1.5 . 10.244.1.5 . tcp . 8080",
                                               "10.244.1.7 . 10.244.1.7 . tcp . 8080",
                                               "10.244.2.5 . 10.244.2.5 . tcp . 8080"])
            #expect(try namespace.run(listChain) == rulesBefore,
                    "the rules (and their handles) stay")
            let servers = try IPVSConnection(namespace: namespace.name)
                .destinations(of: IPVSService(address: "10.96.0.10", port: 80)).map(\.destination.address)
            #expect(Set(servers) == ["10.244.1.5", "10.244.1.7"])

            // A new Service: its address on the device, its virtual service, its mark rule.
            let third = ServiceTable(second.sortedEntries + [Self.entry(2, endpoints: ["10.244.3.5"])])
            try await backend.sync(from: second, to: third)
            #expect(await backend.lastSync?.rewroteRules == true)
            #expect(await backend.lastSync?.addressesAdded == 1)
            #expect(try namespace.run(listChain).contains("10.96.0.12"))
            let device = try namespace.run(["ip", "-4", "-o", "addr", "show", "dev", "kube-ipvs0"])
            #expect(device.contains("10.96.0.12/32"), "\(device)")

            // Removing it takes all three away again; the others stay as they were.
            try await backend.sync(from: third, to: second)
            #expect(await backend.lastSync?.addressesDeleted == 1)
            #expect(try namespace.run(["ipvsadm", "-Ln"]).contains("10.96.0.12") == false)
            #expect(try hairpin(namespace).contains("10.244.3.5 . 10.244.3.5 . tcp . 8080") == false)
            try await backend.sync(from: nil, to: second)
            #expect(await backend.lastSync?.requests == 0, "a full sync finds nothing to repair")
        }
    }
}

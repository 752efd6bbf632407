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
@Suite("IPVS mode: --ipvs-tcp-timeout, --ipvs-tcpfin-timeout, --ipvs-udp-timeout",
       .enabled(if: inIPVSMachine, "needs IPVS: runs inside scripts/vm"))
struct IPVSTimeoutsBackendTests {
    private static let web = ServicePortName(namespace: "default", name: "web", port: "http", protocol: .tcp)

    private func table() -> ServiceTable {
        let endpoints = [ProxyEndpoint(address: IPAddress("10.244.1.5")!, port: 8080)]
        let entry = ServicePortEntry(name: Self.web, port: 80, clusterIPs: [IPAddress("10.96.0.10")!],
                                     allEndpoints: endpoints)
        return ServiceTable([entry.decided(options: ProxyOptions())])
    }

    /// "Timeout (tcp tcpfin udp): 900 120 300" from `ipvsadm -L --timeout`, as its three numbers.
    private func ipvsadmTimeouts(_ namespace: TestNamespace) throws -> [String] {
        let line = try namespace.run(["ipvsadm", "-L", "--timeout"])
        return line.split(separator: ":").last.map { $0.split(whereSeparator: \.isWhitespace).map(String.init) } ?? []
    }

    @Test("the kube-proxy durations, in whole seconds, read back from ipvsadm after the first sync")
    func fullSyncSetsTimeouts() async throws {
        try await withTestNamespaces { namespaces in
            let namespace = namespaces[0]
            let timeouts = IPVSTimeouts(tcp: .seconds(900), tcpFin: .milliseconds(120_700), udp: .zero)
            #expect(timeouts == IPVSTimeouts(tcp: 900, tcpFin: 120, udp: 0), "truncated to whole seconds")
            let udpBefore = try IPVSConnection(namespace: namespace.name).timeouts().udp
            let backend = try IPVSBackend(family: .ipv4, settings: IPVSSettings(timeouts: timeouts,
                                                                                namespace: namespace.name))
            try await backend.sync(from: nil, to: table())
            #expect(try ipvsadmTimeouts(namespace) == ["900", "120", "\(udpBefore)"], "0 leaves udp as it was")
            #expect(try namespace.ipvsadmRules().contains("-A -t 10.96.0.10:80 -s rr"))
        }
    }

    @Test("a timeout the kernel would refuse fails the sync by name before anything is programmed")
    func refusedTimeoutChangesNothing() async throws {
        try await withTestNamespaces { namespaces in
            let namespace = namespaces[0]
            let before = try IPVSConnection(namespace: namespace.name).timeouts()
            let backend = try IPVSBackend(family: .ipv4, settings: IPVSSettings(
                timeouts: IPVSTimeouts(tcp: IPVSTimeouts.maximum + 1), namespace: namespace.name))
            await #expect {
                try await backend.sync(from: nil, to: table())
            } throws: { error in
                (error as? NetlinkError)?.detail?.contains("tcp timeout") == true
            }
            #expect(try IPVSConnection(namespace: namespace.name).timeouts() == before)
            #expect(try namespace.ipvsadmRules().isEmpty)
            #expect(try namespace.run(["ip", "-o", "link", "show"]).contains("kube-ipvs0") == false)
        }
    }
}

extension TestNamespace {
    /// `ipvsadm -Sn` in this namespace: the rules as `ipvsadm -R` takes them.
    fileprivate func ipvsadmRules() throws -> String { try run(["ipvsadm", "-Sn"]) }
}

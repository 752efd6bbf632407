import StraitModel
@testable import StraitProxy
import StraitSystem
import StraitTestSupport
import Testing

@Suite struct ConntrackCleanupTests {
    typealias F = Fixture

    func table(_ endpoints: [String], nodePort: Int? = 30053, proto: TransportProtocol = .udp) -> ServiceTable {
        let service = F.service("dns", type: nodePort == nil ? nil : .nodePort,
                                ports: [ServicePort(name: "dns", protocol: proto, port: 53, nodePort: nodePort)]) {
            $0.spec.externalIPs = ["192.0.2.53"]
        }
        let slice = F.slice("dns-1", service: "dns", endpoints: endpoints.map { F.endpoint($0) },
                            ports: [EndpointPort(name: "dns", protocol: proto, port: 5353)])
        return F.build([service], [slice]).table
    }

    @Test func commandsForARemovedEndpoint() {
        let commands = ConntrackCleanup.commands(from: table(["10.244.1.5", "10.244.1.6"]), to: table(["10.244.1.6"]))
        #expect(commands == [
            ["conntrack", "-D", "-p", "udp", "--orig-dst", "10.96.0.10", "--orig-port-dst", "53", "--reply-src", "10.244.1.5"],
            ["conntrack", "-D", "-p", "udp", "--orig-dst", "192.0.2.53", "--orig-port-dst", "53", "--reply-src", "10.244.1.5"],
            ["conntrack", "-D", "-p", "udp", "--orig-port-dst", "30053", "--reply-src", "10.244.1.5"],
        ])
    }

    @Test func commandsForADeletedServiceAndFirstEndpoints() {
        let removed = ConntrackCleanup.commands(from: table(["10.244.1.5"], nodePort: nil), to: ServiceTable())
        #expect(removed.count == 2)
        #expect(removed.allSatisfy { $0.suffix(2) == ["--reply-src", "10.244.1.5"] })

        let first = ConntrackCleanup.commands(from: table([], nodePort: nil), to: table(["10.244.1.5"], nodePort: nil))
        #expect(first == [
            ["conntrack", "-D", "-p", "udp", "--orig-dst", "10.96.0.10", "--orig-port-dst", "53"],
            ["conntrack", "-D", "-p", "udp", "--orig-dst", "192.0.2.53", "--orig-port-dst", "53"],
        ])
    }

    @Test func nothingForTCPOrUnchanged() {
        #expect(ConntrackCleanup.commands(from: table(["10.244.1.5"], proto: .tcp), to: table([], proto: .tcp)).isEmpty)
        #expect(ConntrackCleanup.commands(from: table(["10.244.1.5"]), to: table(["10.244.1.5"])).isEmpty)
    }

    @Test func exitOneWithZeroEntriesIsNotAFailure() async throws {
        let cleanup = ConntrackCleanup { _ in
            ChildProcess.Output(status: 1, stderr: Array("conntrack v1.4.7 (conntrack-tools): 0 flow entries have been deleted.\n".utf8))
        }
        #expect(try await cleanup.clean(from: table(["10.244.1.5"]), to: table([])) == 0)
        let failing = ConntrackCleanup { _ in
            ChildProcess.Output(status: 1, stderr: Array("conntrack: Operation failed: invalid parameters".utf8))
        }
        await #expect(throws: (any Error).self) { try await failing.clean(from: table(["10.244.1.5"]), to: table([])) }
    }

    /// Real entries in a test namespace: the stale one goes, the live one stays. The entries live a day
    /// (`-t`), not minutes: on a loaded machine the test once took 171 s from insert to listing, and an
    /// entry that timed out meanwhile looked deleted; the namespace takes them with it at the end.
    @Test func deletesRealEntries() async throws {
        try await withTestNamespaces(1) { namespaces in
            let ns = namespaces[0]
            func insert(_ endpoint: String, sport: Int) throws {
                try ns.run(["conntrack", "-I", "-p", "udp", "-s", "10.0.0.1", "-d", "10.96.0.10", "--sport", "\(sport)",
                            "--dport", "53", "-r", endpoint, "-q", "10.0.0.1", "--reply-port-src", "5353",
                            "--reply-port-dst", "\(sport)", "-t", "86400"])
            }
            try insert("10.244.1.5", sport: 40001)
            try insert("10.244.1.6", sport: 40002)
            let cleanup = ConntrackCleanup { try await ChildProcess.runDetached(["ip", "netns", "exec", ns.name] + $0) }
            let deleted = try await cleanup.clean(from: table(["10.244.1.5", "10.244.1.6"]), to: table(["10.244.1.6"]))
            #expect(deleted == 1)
            let listed = try ns.output(["conntrack", "-L", "-p", "udp"]).stdout
            #expect(!listed.contains("src=10.244.1.5"))
            #expect(listed.contains("src=10.244.1.6"))
        }
    }
}

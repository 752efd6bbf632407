import StraitNetlink
import StraitTestSupport
import Testing

// This kernel has no IPVS: the suite runs inside scripts/vm (STRAIT_IN_VM=1), which scripts/test starts.
@Suite("IPVS connection timeouts", .enabled(if: inIPVSMachine, "needs IPVS: runs inside scripts/vm"))
struct IPVSTimeoutsTests {
    /// `ipvsadm -L --timeout` in `namespace`: "Timeout (tcp tcpfin udp): 900 120 300", as three numbers.
    private func ipvsadmTimeouts(_ namespace: TestNamespace) throws -> [String] {
        let line = try namespace.run(["ipvsadm", "-L", "--timeout"])
        return line.split(separator: ":").last.map { $0.split(whereSeparator: \.isWhitespace).map(String.init) } ?? []
    }

    @Test("timeouts set read back through netlink and ipvsadm; a 0 leaves that timeout as it is")
    func setAndReadBack() async throws {
        try await withTestNamespaces { namespaces in
            let namespace = namespaces[0]
            let ipvs = try IPVSConnection(namespace: namespace.name)
            let before = try ipvs.timeouts()
            #expect(try ipvsadmTimeouts(namespace) == ["\(before.tcp)", "\(before.tcpFin)", "\(before.udp)"])

            try ipvs.setTimeouts(IPVSTimeouts(tcp: 1234, tcpFin: 56, udp: 78))
            #expect(try ipvs.timeouts() == IPVSTimeouts(tcp: 1234, tcpFin: 56, udp: 78))
            #expect(try ipvsadmTimeouts(namespace) == ["1234", "56", "78"])

            try ipvs.setTimeouts(IPVSTimeouts(udp: 90))
            #expect(try ipvs.timeouts() == IPVSTimeouts(tcp: 1234, tcpFin: 56, udp: 90))
            #expect(try ipvsadmTimeouts(namespace) == ["1234", "56", "90"])
        }
    }

    @Test("a timeout above the kernel's limit is refused by name and changes nothing")
    func aboveTheLimitIsRefused() async throws {
        try await withTestNamespaces { namespaces in
            let ipvs = try IPVSConnection(namespace: namespaces[0].name)
            let before = try ipvs.timeouts()
            #expect {
                try ipvs.setTimeouts(IPVSTimeouts(tcp: 60, tcpFin: IPVSTimeouts.maximum + 1))
            } throws: { error in
                let error = error as? NetlinkError
                return error?.code == .invalidArgument && (error?.detail ?? "").contains("tcpfin timeout")
            }
            #expect(try ipvs.timeouts() == before)
        }
    }
}

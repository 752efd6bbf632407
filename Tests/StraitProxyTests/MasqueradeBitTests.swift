import StraitModel
import StraitProxy
import StraitProxyIPTables
import StraitTestSupport
import Testing

/// `--iptables-masquerade-bit`: the rules mark and masquerade on the chosen fwmark bit.
@Suite(.serialized) struct MasqueradeBitTests {
    @Test func theMarkFollowsTheBit() {
        #expect(IPTablesRuleOptions().masqueradeMark == "0x4000")
        #expect(IPTablesRuleOptions(masqueradeBit: 0).masqueradeMark == "0x1")
        #expect(IPTablesRuleOptions(masqueradeBit: 31).masqueradeMark == "0x80000000")
        let rules = IPTablesRules.natBaseRules(IPTablesRuleOptions(masqueradeBit: 12))
        #expect(rules.contains("-A KUBE-MARK-MASQ -j MARK --or-mark 0x1000"))
        #expect(rules.contains("-A KUBE-POSTROUTING -m mark ! --mark 0x1000/0x1000 -j RETURN"))
        #expect(IPTablesRules.filterForwardRules(IPTablesRuleOptions(masqueradeBit: 12)).contains { $0.contains("--mark 0x1000/0x1000 -j ACCEPT") })
    }

    /// Real packets: a client outside the cluster CIDR reaches a ClusterIP and is masqueraded, with
    /// the mark on bit 3 and nothing on kube-proxy's default bit.
    @Test func packetsAreMasqueradedWithTheChosenBit() async throws {
        try await ProxyTopology.with(endpoints: 1) { net in
            let backend = IPTablesBackend(options: IPTablesRuleOptions(proxy: ProxyTopology.options(), masqueradeBit: 3),
                                          tools: IPTablesRestore(flavor: .hostDefault(), family: .ipv4, namespace: net.node.name))
            let web = ServicePortName(namespace: "default", name: "web", port: "http", protocol: .tcp)
            let entry = ServicePortEntry(name: web, port: 80, clusterIPs: [IPAddress("10.96.0.10")!],
                                         allEndpoints: [net.endpoint(0)]).decided(options: ProxyTopology.options())
            try await backend.sync(from: nil, to: ServiceTable([entry]))
            let answers = try net.probe("tcp", "10.96.0.10", 80, count: 3)
            #expect(ProxyTopology.names(answers) == ["ep0"], "\(answers)")
            // Masqueraded to the node's address on the endpoint's link.
            #expect(answers.allSatisfy { $0.hasSuffix(" \(ProxyTopology.nodeSideIP(0))") }, "\(answers)")
            let saved = try net.saved()
            // iptables-save prints --or-mark 0x8 as --set-xmark 0x8/0x8.
            #expect(saved.contains("-j MARK --set-xmark 0x8/0x8") && saved.contains("--mark 0x8/0x8"), "\(saved)")
            #expect(!saved.contains("0x4000"), "\(saved)")
            try await backend.cleanup()
        }
    }
}

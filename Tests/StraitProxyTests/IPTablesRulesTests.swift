import StraitModel
import Testing
import StraitProxy
@testable import StraitProxyIPTables

private func ip(_ text: String) -> IPAddress { IPAddress(text)! }
private func cidr(_ text: String) -> IPCIDR { IPCIDR(text)! }
private func endpoint(_ address: String, _ port: UInt16 = 80, local: Bool = false) -> ProxyEndpoint {
    ProxyEndpoint(address: ip(address), port: port, isLocal: local)
}
private let svc1 = ServicePortName(namespace: "ns1", name: "svc1", port: "p80", protocol: .tcp)

/// The IPv4 rules of `entry`, its plan decided with `proxy`.
private func render(_ entry: ServicePortEntry, _ proxy: ProxyOptions = ProxyOptions(),
                    endpointComments: Bool = true) -> IPTablesServiceRules {
    let plan = entry.decided(nodeName: "node-a", options: proxy).plan(for: .ipv4)!
    return IPTablesRules.render(plan, IPTablesRuleOptions(proxy: proxy, endpointComments: endpointComments))
}

@Suite struct IPTablesChainNameTests {
    @Test func sha256MatchesNISTVectors() {
        func hex(_ text: String) -> String {
            SHA256.hash(Array(text.utf8)).map { String($0, radix: 16).count == 1 ? "0" + String($0, radix: 16) : String($0, radix: 16) }.joined()
        }
        #expect(hex("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq")
                == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        #expect(hex(String(repeating: "a", count: 1000)) == "41edece42d63e8d9bf515a9ba6932e1c20cbc9f5a5d134645adb5db1b9737ea3")
    }

    /// The names kube-proxy's own tests expect (pkg/proxy/iptables/proxier_test.go).
    @Test func namesMatchKubeProxy() {
        #expect(IPTablesChainName.cluster(svc1) == "KUBE-SVC-XPGD46QRK7WJZT7O")
        #expect(IPTablesChainName.endpoint(svc1, endpoint("10.180.0.1")) == "KUBE-SEP-SXIVWICOYRO3J4NJ")
        let udp = ServicePortName(namespace: "ns2", name: "svc2", port: "p80", protocol: .udp)
        #expect(IPTablesChainName.endpoint(udp, ProxyEndpoint(address: ip("fd00::1"), port: 53)) == "KUBE-SEP-KEUCDZJ7SGXQZJ5D")
        let unnamed = ServicePortName(namespace: "ns", name: "svc", port: "", protocol: .tcp)
        #expect(IPTablesChainName.cluster(unnamed) == "KUBE-SVC-VQRITURWPHXFU3HQ")
        #expect(IPTablesChainName.external(svc1) == "KUBE-EXT-XPGD46QRK7WJZT7O")
        #expect(IPTablesChainName.isServiceChain("KUBE-FW-XPGD46QRK7WJZT7O"))
        #expect(!IPTablesChainName.isServiceChain("KUBE-SERVICES"))
    }

    @Test func flavorBinaries() {
        #expect(IPTablesFlavor.nft.binary("iptables-restore", family: .ipv4) == "iptables-nft-restore")
        #expect(IPTablesFlavor.legacy.binary("iptables-save", family: .ipv6) == "ip6tables-legacy-save")
        #expect(IPTablesFlavor.nft.binary("iptables", family: .ipv4) == "iptables-nft")
    }
}

@Suite struct IPTablesRulesTests {
    @Test func probabilitiesAsKubeProxyPrintsThem() {
        #expect(IPTablesRules.probability(2) == "0.5000000000")
        #expect(IPTablesRules.probability(3) == "0.3333333333")
        #expect(IPTablesRules.probability(7) == "0.1428571429")
        #expect(IPTablesRules.probability(10) == "0.1000000000")
    }

    @Test func clusterIPWithThreeEndpoints() {
        let endpoints = [endpoint("10.180.0.1"), endpoint("10.180.0.2"), endpoint("10.180.0.3")]
        let entry = ServicePortEntry(name: svc1, port: 80, clusterIPs: [ip("172.30.0.41")], allEndpoints: endpoints)
        let rules = render(entry, ProxyOptions(clusterCIDRs: [cidr("10.0.0.0/8")]))
        let svc = "KUBE-SVC-XPGD46QRK7WJZT7O"
        #expect(rules.dispatch.natServices == [
            "-A KUBE-SERVICES -m comment --comment \"ns1/svc1:p80 cluster IP\" -m tcp -p tcp -d 172.30.0.41 --dport 80 -j \(svc)",
        ])
        #expect(rules.dispatch.filter.isEmpty && rules.dispatch.natNodePorts.isEmpty)
        #expect(rules.chains.first == svc && rules.chains.count == 4)
        #expect(rules.chainRules[0] == "-A \(svc) -m comment --comment \"ns1/svc1:p80 cluster IP\" -m tcp -p tcp -d 172.30.0.41 --dport 80 ! -s 10.0.0.0/8 -j KUBE-MARK-MASQ")
        #expect(rules.chainRules[1].contains("--probability 0.3333333333 -j KUBE-SEP-"))
        #expect(rules.chainRules[2].contains("--probability 0.5000000000 -j KUBE-SEP-"))
        #expect(!rules.chainRules[3].contains("statistic"))
        #expect(rules.chainRules.contains("-A KUBE-SEP-SXIVWICOYRO3J4NJ -m comment --comment \"ns1/svc1:p80\" -s 10.180.0.1 -j KUBE-MARK-MASQ"))
        #expect(rules.chainRules.contains("-A KUBE-SEP-SXIVWICOYRO3J4NJ -m comment --comment \"ns1/svc1:p80\" -m tcp -p tcp -j DNAT --to-destination 10.180.0.1:80"))
    }

    @Test func noEndpointsRejectsInFilterOnly() {
        let entry = ServicePortEntry(name: svc1, port: 80, clusterIPs: [ip("172.30.0.41")], nodePort: 30080,
                                     externalIPs: [ip("192.0.2.1")])
        let rules = render(entry)
        #expect(rules.chains.isEmpty && rules.chainRules.isEmpty)
        #expect(rules.dispatch.natServices.isEmpty && rules.dispatch.natNodePorts.isEmpty)
        #expect(rules.dispatch.filter == [
            "-A KUBE-SERVICES -m comment --comment \"ns1/svc1:p80 has no endpoints\" -m tcp -p tcp -d 172.30.0.41 --dport 80 -j REJECT",
            "-A KUBE-EXTERNAL-SERVICES -m comment --comment \"ns1/svc1:p80 has no endpoints\" -m tcp -p tcp -d 192.0.2.1 --dport 80 -j REJECT",
            "-A KUBE-EXTERNAL-SERVICES -m comment --comment \"ns1/svc1:p80 has no endpoints\" -m addrtype --dst-type LOCAL -m tcp -p tcp --dport 30080 -j REJECT",
        ])
    }

    @Test func externalLocalPolicyKeepsSourceAndDropsWithoutLocalEndpoints() {
        let remote = endpoint("10.180.1.1")
        let entry = ServicePortEntry(name: svc1, port: 80, clusterIPs: [ip("172.30.0.41")], nodePort: 30080,
                                     externalTrafficPolicyLocal: true, allEndpoints: [remote])
        let rules = render(entry, ProxyOptions(clusterCIDRs: [cidr("10.0.0.0/8")]))
        let ext = "KUBE-EXT-XPGD46QRK7WJZT7O", svc = "KUBE-SVC-XPGD46QRK7WJZT7O"
        #expect(rules.dispatch.natNodePorts == ["-A KUBE-NODEPORTS -m comment --comment \"ns1/svc1:p80\" -m tcp -p tcp --dport 30080 -j \(ext)"])
        #expect(rules.dispatch.filter.contains { $0.hasPrefix("-A KUBE-EXTERNAL-SERVICES -m comment --comment \"ns1/svc1:p80 has no local endpoints\"") && $0.hasSuffix("-j DROP") })
        let extRules = rules.chainRules.filter { $0.hasPrefix("-A \(ext) ") }
        #expect(extRules.count == 3)
        #expect(extRules[0].hasSuffix("-s 10.0.0.0/8 -j \(svc)"))
        #expect(extRules.allSatisfy { !$0.contains("KUBE-SVL") })
        #expect(!rules.chains.contains("KUBE-SVL-XPGD46QRK7WJZT7O"))

        var withLocal = entry
        withLocal.allEndpoints = [endpoint("10.180.0.1", local: true), remote]
        let local = render(withLocal, ProxyOptions(clusterCIDRs: [cidr("10.0.0.0/8")]))
        #expect(local.chainRules.contains("-A \(ext) -j KUBE-SVL-XPGD46QRK7WJZT7O"))
        #expect(!local.chainRules.contains { $0.hasPrefix("-A \(ext) ") && $0.hasSuffix("-j KUBE-MARK-MASQ") && !$0.contains("src-type") })
        #expect(local.dispatch.filter.isEmpty)
    }

    @Test func loadBalancerSourceRangesGoThroughFirewallChain() {
        let eps = [endpoint("10.180.0.1")]
        let entry = ServicePortEntry(name: svc1, port: 80, clusterIPs: [ip("172.30.0.41")], loadBalancerIPs: [ip("203.0.113.7")],
                                     loadBalancerSourceRanges: [cidr("198.51.100.0/24")], allEndpoints: eps)
        let rules = render(entry)
        let fw = "KUBE-FW-XPGD46QRK7WJZT7O"
        #expect(rules.dispatch.natServices.contains("-A KUBE-SERVICES -m comment --comment \"ns1/svc1:p80 loadbalancer IP\" -m tcp -p tcp -d 203.0.113.7 --dport 80 -j \(fw)"))
        #expect(rules.chainRules.contains("-A \(fw) -m comment --comment \"ns1/svc1:p80 loadbalancer IP\" -s 198.51.100.0/24 -j KUBE-EXT-XPGD46QRK7WJZT7O"))
        #expect(rules.dispatch.filter.contains { $0.hasPrefix("-A KUBE-PROXY-FIREWALL") && $0.contains("-d 203.0.113.7") && $0.hasSuffix("-j DROP") })
    }

    @Test func affinityUsesRecentLists() {
        let eps = [endpoint("10.180.0.1"), endpoint("10.180.0.2")]
        let entry = ServicePortEntry(name: svc1, port: 80, clusterIPs: [ip("172.30.0.41")], affinityTimeout: 10800,
                                     allEndpoints: eps)
        let rules = render(entry, endpointComments: false)
        let sep = "KUBE-SEP-SXIVWICOYRO3J4NJ"
        #expect(rules.chainRules.contains("-A KUBE-SVC-XPGD46QRK7WJZT7O -m recent --name \(sep) --rcheck --seconds 10800 --reap -j \(sep)"))
        #expect(rules.chainRules.contains("-A \(sep) -m recent --name \(sep) --set -m tcp -p tcp -j DNAT --to-destination 10.180.0.1:80"))
    }

    @Test func nodePortAddressesRestrictTheTail() {
        #expect(IPTablesRules.nodePortsTail(IPTablesRuleOptions()).first!.hasSuffix("-m addrtype --dst-type LOCAL ! -d 127.0.0.0/8 -j KUBE-NODEPORTS"))
        let ranges = ProxyOptions(nodePortAddresses: [cidr("192.168.0.0/16"), cidr("fd00::/64")])
        let restricted = IPTablesRules.nodePortsTail(IPTablesRuleOptions(proxy: ranges))
        #expect(restricted.count == 1 && restricted[0].contains("-d 192.168.0.0/16 -m addrtype --dst-type LOCAL"))
        let restricted6 = IPTablesRules.nodePortsTail(IPTablesRuleOptions(family: .ipv6, proxy: ranges))
        #expect(restricted6 == ["-A KUBE-SERVICES -m comment --comment \"kubernetes service nodeports; NOTE: this must be the last rule in this chain\" -d fd00::/64 -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS"])
    }

    @Test func cleanupInputKeepsForeignRules() {
        let saved = IPTablesSave("""
            *nat
            :PREROUTING ACCEPT [0:0]
            :POSTROUTING ACCEPT [0:0]
            :FOREIGN - [0:0]
            :KUBE-SERVICES - [0:0]
            :KUBE-SVC-XPGD46QRK7WJZT7O - [0:0]
            -A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
            -A PREROUTING -s 1.2.3.4/32 -j FOREIGN
            -A KUBE-SERVICES -d 172.30.0.41/32 -p tcp -m tcp --dport 80 -j KUBE-SVC-XPGD46QRK7WJZT7O
            COMMIT
            *filter
            :INPUT ACCEPT [0:0]
            -A INPUT -s 1.2.3.4/32 -j ACCEPT
            COMMIT

            """)
        #expect(saved.cleanupInput() == """
            *nat
            :KUBE-SERVICES - [0:0]
            :KUBE-SVC-XPGD46QRK7WJZT7O - [0:0]
            -D PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
            -X KUBE-SERVICES
            -X KUBE-SVC-XPGD46QRK7WJZT7O
            COMMIT

            """)
    }
}

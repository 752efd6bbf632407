import Foundation
import StraitNFT
import StraitTestSupport
import Testing

@Suite("StraitNFT commit")
struct CommitTests {
    @Test("table, base and regular chains, sets, vmap and rules print as nft writes them")
    func fullTable() async throws {
        try await withTestNamespaces(1) { namespaces in
            let namespace = namespaces[0]
            let connection = try NFTConnection(namespace: namespace.name)
            try connection.commit(Fixture.transaction)
            let text = try namespace.listTable()
            let lines = try namespace.lines()
            #expect(lines.contains("type nat hook prerouting priority dstnat; policy accept;"), "\(text)")
            #expect(lines.contains("type nat hook postrouting priority srcnat; policy accept;"), "\(text)")
            #expect(lines.contains("type filter hook input priority filter; policy drop;"), "\(text)")
            #expect(lines.contains("chain services {"), "\(text)")
            #expect(lines.contains("type ipv4_addr . inet_proto . inet_service : verdict"), "\(text)")
            #expect(lines.contains("type ipv4_addr"), "\(text)")
            #expect(text.contains("10.96.0.10 . tcp . 80 : goto svc-a"), "\(text)")
            #expect(text.contains("10.96.0.11 . udp . 53 : goto svc-b"), "\(text)")
            #expect(lines.contains("jump services"), "\(text)")
            #expect(lines.contains("ip daddr . meta l4proto . th dport vmap @service-ips"), "\(text)")
            #expect(lines.contains("numgen random mod 2 vmap { 0 : goto svc-b, 1 : goto svc-b }"), "\(text)")
            #expect(lines.contains("meta l4proto tcp counter packets 0 bytes 0 dnat to 10.0.0.5:8080 comment \"to endpoint\""), "\(text)")
            #expect(lines.contains("meta mark & 0x00004000 == 0x00004000 masquerade fully-random"), "\(text)")
            #expect(lines.contains("ct state established,related accept"), "\(text)")
            #expect(lines.contains("fib daddr type local ip saddr 10.0.0.9 reject"), "\(text)")
            #expect(lines.contains("ip daddr @cluster-ips meta mark set meta mark | 0x00004000"), "\(text)")
        }
    }
}

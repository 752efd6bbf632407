import Foundation
import StraitStore
import StraitTestSupport
import Testing

/// A dual-stack network (`EnableIPv6`): every node leases an IPv4 and an IPv6 subnet in one
/// flannel key, owns `strait.1` and `strait-v6.1`, writes `STRAIT_IPV6_*`, and pods made by
/// strait-cni ping each other over both families across three nodes.
@Suite(.serialized) struct DualStackTests {
    @Test func podsPingEachOtherOverBothFamiliesAcrossThreeNodes() async throws {
        try await withTestNamespaces(7) { namespaces in
            let cluster = try OverlayCluster(namespaces, nodes: 3, dualStack: true)
            defer { cluster.stopAll(); cluster.removeDirectory() }
            do {
                let store = try await openStore(url: cluster.storeURL)
                let config = #"{"Network":"10.244.0.0/16","EnableIPv6":true,"IPv6Network":"fd00:10:244::/56","Backend":{"Type":"vxlan"}}"#
                try await store.put("/strait/network/config", value: Data(config.utf8))
                for node in 0..<3 { try cluster.startAgent(node, flags: ["--ip-masq"]) }
                var addresses: [Int: [String]] = [:]
                for node in 0..<3 {
                    let subnet = try cluster.waitForSubnet(node)
                    let third = subnet.split(separator: ".")[2]  // 10.244.N.0/24 pairs with fd00:10:244:N::/64 (N in hex)
                    let v6Subnet = "fd00:10:244:\(String(Int(third)!, radix: 16))::"
                    let file = try #require(cluster.subnetFileText(node))
                    #expect(file.contains("STRAIT_IPV6_NETWORK=fd00:10:244::/56\n") && file.contains("STRAIT_IPV6_SUBNET=\(v6Subnet)1/64\n"), "\(file)")
                    #expect(file.contains("STRAIT_MTU=1430\n"), "the IPv6 tunnel's 70 bytes: \(file)")
                    let link = try cluster.nodes[node].run(["ip", "-d", "-o", "link", "show", "strait-v6.1"])
                    #expect(link.contains("vxlan id 1") && link.contains("local \(cluster.publicIPv6(node))"), "\(link)")
                    #expect(try cluster.nodes[node].run(["ip", "-6", "-o", "addr", "show", "dev", "strait-v6.1"]).contains("\(v6Subnet)/128"))
                    let key = "/strait/network/subnets/\(subnet.replacingOccurrences(of: "/", with: "-"))&\(v6Subnet)-64"
                    let lease = try #require(try await store.get(key), "the dual-stack key \(key)")
                    let value = String(decoding: lease.value, as: UTF8.self)
                    #expect(value.contains(#""PublicIPv6":"\#(cluster.publicIPv6(node))""#) && value.contains("\"BackendV6Data\":{\"VNI\":1"), "\(value)")
                    _ = try cluster.addPod(node)
                    addresses[node] = cluster.podAddresses[node]
                    #expect(addresses[node]?.count == 2 && addresses[node]?.last?.hasPrefix(v6Subnet) == true, "\(addresses[node] ?? [])")
                }
                await store.close()
                let masquerade = try cluster.nodes[0].run(["nft", "list", "table", "ip6", "strait-overlay"])
                #expect(masquerade.contains("ip6 saddr fd00:10:244::/56 ip6 daddr != fd00:10:244::/56 masquerade"),
                        "\(masquerade)")
                let forward = try cluster.nodes[0].run(["ip6tables", "-S", "STRAIT-FWD"])
                #expect(forward.contains("-s fd00:10:244::/56 -j ACCEPT"), "\(forward)")
                for from in 0..<3 {
                    for to in 0..<3 where to != from {
                        for address in addresses[to]! {
                            try waitUntil("pod \(from) pings pod \(to) at \(address)") { try cluster.pods[from].ping(address) }
                        }
                    }
                }
            } catch {
                for node in 0..<3 { print("--- node \(node) log ---\n\(cluster.log(node))") }
                throw error
            }
        }
    }
}

import Foundation
import StraitStore
import StraitTestSupport
import Testing

/// The host-gw backend: plain routes via each node's public IP on the shared segment; a node
/// elsewhere is refused with an error naming it.
@Suite struct HostGatewayTests {
    @Test func podsReachEachOtherAndAnOffSegmentNodeIsRefused() async throws {
        try await withTestNamespaces(5) { namespaces in
            let cluster = try OverlayCluster(namespaces, nodes: 2)
            cluster.extraFlags = ["--cluster-cidr", "10.244.0.0/16", "--backend", "host-gw"]
            defer { cluster.stopAll(); cluster.removeDirectory() }
            do {
                var subnets: [Int: String] = [:], pods: [Int: String] = [:]
                for node in 0..<2 { try cluster.startAgent(node) }
                for node in 0..<2 {
                    subnets[node] = try cluster.waitForSubnet(node)
                    pods[node] = try cluster.addPod(node)
                    #expect(cluster.subnetFileText(node)?.contains("STRAIT_MTU=1500\n") == true, "no encapsulation overhead")
                }
                for (node, peer) in [(0, 1), (1, 0)] {
                    try waitUntil("node \(node) routes to node \(peer)") {
                        try cluster.nodes[node].run(["ip", "route", "show", subnets[peer]!])
                            .contains("via \(cluster.publicIP(peer)) dev eth0")
                    }
                    #expect(try !cluster.nodes[node].output(["ip", "link", "show", "strait.1"]).succeeded, "no VXLAN device")
                }
                try cluster.pods[1].startTCPServer(port: 5000, reply: "pod1")
                #expect(try cluster.pods[0].ping(pods[1]!))
                #expect(try cluster.pods[0].tcpRequest(pods[1]!, 5000) == "pod1")

                let store = try await openStore(url: cluster.storeURL)
                let faraway = #"{"PublicIP":"10.9.9.9","BackendType":"host-gw"}"#
                try await store.put("/strait/network/subnets/10.244.250.0-24", value: Data(faraway.utf8))
                await store.close()
                try waitUntil("node 0 refuses the off-segment node") {
                    cluster.log(0).contains("10.9.9.9 is not on this node's L2 segment (192.168.100.0/24 on eth0)")
                }
                #expect(try cluster.nodes[0].run(["ip", "route", "show", "10.244.250.0/24"]).isEmpty)
                #expect(try cluster.pods[0].ping(pods[1]!), "the other routes stay")
            } catch {
                for node in 0..<2 { print("--- node \(node) log ---\n\(cluster.log(node))") }
                throw error
            }
        }
    }
}

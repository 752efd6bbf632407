import Foundation
import StraitTestSupport
import Testing

/// A flannel network on etcd (the fixture) taken over by Strait agents one node at a time: every
/// node keeps its subnet, its VTEP MAC and flannel's device, every lease keeps flannel's key and
/// value byte for byte, and pods talk across nodes before, during and after.
@Suite(.serialized) struct FlannelMigrationTests {
    @Test func straitAgentsReplaceFlannelAgentsOneNodeAtATime() async throws {
        try await withTestNamespaces(7) { namespaces in
            let cluster = try OverlayCluster(namespaces, nodes: 3, storeURL: "")
            cluster.subnetFileName = "flannel/subnet.env"
            cluster.device = "flannel.1"
            cluster.extraFlags = ["--etcd-prefix", "/coreos.com/network", "--ip-masq"]
            defer { cluster.stopAll(); cluster.removeDirectory() }
            try await TestEtcd.with(namespace: namespaces[0], host: "192.168.100.254") { etcd in
                cluster.storeURL = etcd.storeURL
                let gateway = EtcdGatewayClient(namespace: cluster.underlay, host: "192.168.100.254")
                do {
                    try FlannelFixture.writeStore(gateway)
                    let before = try gateway.list(prefix: "/coreos.com/network/")
                    var pods: [Int: String] = [:]
                    for node in 0..<3 {
                        try FlannelFixture.programNode(node, in: cluster)
                        pods[node] = try cluster.addPod(node)  // strait-cni reads FLANNEL_* names
                        try cluster.pods[node].startTCPServer(port: 5000, reply: "pod\(node)")
                    }
                    for node in 0..<3 {
                        let stem = FlannelFixture.nodes[node].vtep.dropLast(1)  // "10.244.17."
                        #expect(pods[node]!.hasPrefix(stem), "pod \(node) got \(pods[node]!) from FLANNEL_SUBNET")
                    }
                    try OverlayEndToEndTests().checkFullMesh(cluster, pods)

                    for node in 0..<3 {
                        try cluster.startAgent(node)
                        try waitUntil("node \(node) takes over its flannel lease") { cluster.log(node).contains("leased ") }
                        let fixture = FlannelFixture.nodes[node]
                        #expect(cluster.log(node).contains("leased \(fixture.subnet)"), "same subnet: \(cluster.log(node))")
                        #expect(try cluster.vtepMAC(node) == fixture.vtepMAC, "same VTEP MAC on flannel.1")
                        #expect(try !cluster.nodes[node].output(["ip", "link", "show", "strait.1"]).succeeded, "no second device")
                        #expect(cluster.subnetFileText(node) == fixture.subnetEnv, "subnet.env as flannel wrote it")
                        for peer in 0..<3 where peer != node {
                            let other = FlannelFixture.nodes[peer]
                            try waitUntil("node \(node) programs node \(peer)") {
                                try cluster.entries(on: node, subnet: other.subnet, mac: other.vtepMAC, publicIP: other.publicIP).all
                            }
                        }
                        try OverlayEndToEndTests().checkFullMesh(cluster, pods)
                    }

                    // Every lease is still flannel's: same keys, same values byte for byte, on the same etcd
                    // lease (the reservation still on none).
                    let after = try gateway.list(prefix: "/coreos.com/network/")
                    #expect(Set(after.keys) == Set(before.keys), "keys: \(after.keys.sorted())")
                    for node in FlannelFixture.nodes {
                        #expect(after[node.key]?.value == node.leaseValue, "\(node.key): \(after[node.key]?.value ?? "gone")")
                        #expect(after[node.key]?.lease == before[node.key]?.lease, "\(node.key) keeps its etcd lease")
                    }
                    #expect(after["/coreos.com/network/config"]?.value == FlannelFixture.config)
                    #expect(before[FlannelFixture.nodes[2].key]?.lease == "0" && before[FlannelFixture.nodes[0].key]?.lease != "0")
                } catch {
                    for node in 0..<3 { print("--- node \(node) log ---\n\(cluster.log(node))") }
                    throw error
                }
            }
        }
    }
}

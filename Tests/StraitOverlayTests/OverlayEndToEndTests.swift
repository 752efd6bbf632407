import Foundation
import StraitStore
import StraitTestSupport
import Testing

/// Three nodes on one test bridge, each running the built `strait overlay` against one store, with
/// pods made by the built `strait-cni`; then real packets between the pods, and the kernel inspected.
@Suite(.serialized) struct OverlayEndToEndTests {
    /// Every pod pings and opens a TCP connection to every other node's pod.
    func checkFullMesh(_ cluster: OverlayCluster, _ addresses: [Int: String]) throws {
        for (from, _) in addresses {
            for (to, address) in addresses where to != from {
                #expect(try cluster.pods[from].ping(address), "pod \(from) → pod \(to) ping")
                #expect(try cluster.pods[from].tcpRequest(address, 5000) == "pod\(to)", "pod \(from) → pod \(to) tcp")
            }
        }
    }

    func waitForMesh(_ cluster: OverlayCluster, nodes: [Int], subnets: [Int: String], macs: [Int: String]) throws {
        for node in nodes {
            for peer in nodes where peer != node {
                try waitUntil("node \(node) programs node \(peer)") {
                    try cluster.entries(on: node, subnet: subnets[peer]!, mac: macs[peer]!,
                                        publicIP: cluster.publicIP(peer)).all
                }
            }
        }
    }

    /// Brings up `count` nodes with a pod each; returns subnets, MACs and pod addresses.
    func bringUp(_ cluster: OverlayCluster, count: Int = 3) throws -> (subnets: [Int: String], macs: [Int: String], pods: [Int: String]) {
        var subnets: [Int: String] = [:], macs: [Int: String] = [:], pods: [Int: String] = [:]
        for node in 0..<count { try cluster.startAgent(node) }
        for node in 0..<count {
            subnets[node] = try cluster.waitForSubnet(node)
            macs[node] = try cluster.vtepMAC(node)
            pods[node] = try cluster.addPod(node)
            try cluster.pods[node].startTCPServer(port: 5000, reply: "pod\(node)")
        }
        try waitForMesh(cluster, nodes: Array(0..<count), subnets: subnets, macs: macs)
        return (subnets, macs, pods)
    }

    @Test func sqliteMeshRestartAndLeaseDeletion() async throws {
        try await withTestNamespaces(7) { namespaces in
            let cluster = try OverlayCluster(namespaces, nodes: 3)
            defer { cluster.stopAll(); cluster.removeDirectory() }
            do {
                let (subnets, macs, pods) = try bringUp(cluster)
                #expect(Set(subnets.values).count == 3, "three distinct subnets: \(subnets)")
                try checkFullMesh(cluster, pods)

                // What the agent set up on node 0, as the issue and flannel define it.
                let file = try #require(cluster.subnetFileText(0))
                #expect(file.contains("STRAIT_NETWORK=10.244.0.0/16\n"))
                #expect(file.contains("STRAIT_SUBNET=\(subnets[0]!.replacingOccurrences(of: ".0/", with: ".1/"))\n"))
                #expect(file.contains("STRAIT_MTU=1450\n") && file.contains("STRAIT_IPMASQ=true\n"))
                let link = try cluster.nodes[0].run(["ip", "-d", "-o", "link", "show", "strait.1"])
                #expect(link.contains("mtu 1450") && link.contains("vxlan id 1") && link.contains("dstport 8472"))
                #expect(link.contains("nolearning"))
                let vtepAddress = subnets[0]!.replacingOccurrences(of: "/24", with: "/32")
                #expect(try cluster.nodes[0].run(["ip", "-o", "addr", "show", "dev", "strait.1"]).contains(vtepAddress))
                let masquerade = try cluster.nodes[0].run(["nft", "list", "table", "ip", "strait-overlay"])
                #expect(masquerade.contains("ip saddr 10.244.0.0/16 ip daddr != 10.244.0.0/16 masquerade"))
                let store = try await openStore(url: cluster.storeURL)
                let config = try #require(try await store.get("/strait/network/config"))
                #expect(String(decoding: config.value, as: UTF8.self).contains("\"Network\":\"10.244.0.0/16\""))
                let lease0 = try #require(try await store.get("/strait/network/subnets/\(subnets[0]!.replacingOccurrences(of: "/", with: "-"))"))
                let value0 = String(decoding: lease0.value, as: UTF8.self)
                #expect(value0.contains("\"PublicIP\":\"192.168.100.1\"") && value0.contains("\"VtepMAC\":\"\(macs[0]!)\""))
                #expect(lease0.lease != nil, "the lease key is bound to a store lease (TTL)")

                // Node 1 stops and starts again: same subnet, same MAC, peers unchanged, traffic flows.
                #expect(cluster.stopAgent(1), "the agent exits on SIGTERM")
                #expect(try cluster.nodes[1].output(["ip", "link", "show", "strait.1"]).succeeded, "the device stays")
                #expect(try cluster.pods[0].ping(pods[1]!), "forwarding continues while the agent is down")
                try cluster.startAgent(1)
                try waitUntil("node 1 logs its lease again") { cluster.log(1).components(separatedBy: "leased ").count > 2 }
                #expect(cluster.subnet(1) == subnets[1])
                #expect(try cluster.vtepMAC(1) == macs[1])
                try waitForMesh(cluster, nodes: [0, 1, 2], subnets: subnets, macs: macs)
                try checkFullMesh(cluster, pods)

                // Someone deletes node 1's device: the agent recreates it with the same MAC and entries.
                try cluster.nodes[1].run(["ip", "link", "del", "strait.1"])
                try waitUntil("node 1 recreates strait.1 and its entries") {
                    try cluster.entries(on: 1, subnet: subnets[0]!, mac: macs[0]!, publicIP: cluster.publicIP(0)).all
                }
                #expect(try cluster.vtepMAC(1) == macs[1])
                #expect(try cluster.pods[1].tcpRequest(pods[0]!, 5000) == "pod0")

                // Node 2 goes away and its lease is deleted: every peer drops its route, neighbour and FDB entry.
                cluster.stopAgent(2)
                try await store.delete("/strait/network/subnets/\(subnets[2]!.replacingOccurrences(of: "/", with: "-"))")
                for node in [0, 1] {
                    try waitUntil("node \(node) drops node 2") {
                        try cluster.entries(on: node, subnet: subnets[2]!, mac: macs[2]!, publicIP: cluster.publicIP(2)).none
                    }
                }
                try checkFullMesh(cluster, pods.filter { $0.key != 2 })

                // A running node whose lease is deleted leases again (its subnet, still free) and is not lost.
                try await store.delete("/strait/network/subnets/\(subnets[1]!.replacingOccurrences(of: "/", with: "-"))")
                let key1 = "/strait/network/subnets/\(subnets[1]!.replacingOccurrences(of: "/", with: "-"))"
                try await waitUntilAsync("node 1 leases again") { try await store.get(key1) != nil }
                try waitForMesh(cluster, nodes: [0, 1], subnets: subnets, macs: macs)
                #expect(try cluster.pods[0].ping(pods[1]!))
                await store.close()
            } catch {
                for node in 0..<3 { print("--- node \(node) log ---\n\(cluster.log(node))") }
                throw error
            }
        }
    }
}


import Foundation
import StraitStore
import StraitTestSupport
import Testing

/// flanneld's flags and backend options on real nodes: each one changes the kernel (or the agent's
/// answer) as flannel's does, and a bad value is refused naming it.
@Suite(.serialized) struct OverlayFlagsTests {
    static let healthzPort = 8471

    func healthz(_ cluster: OverlayCluster, _ node: Int) throws -> String {
        try cluster.nodes[node].output(["curl", "-s", "--max-time", "3", "-o", "/dev/null", "-w", "%{http_code}",
                                        "http://127.0.0.1:\(Self.healthzPort)/healthz"]).stdout
    }

    @Test func backendOptionsShapeTheDeviceAndTheNodeReportsHealthy() async throws {
        try await withTestNamespaces(3) { namespaces in
            let cluster = try OverlayCluster(namespaces, nodes: 1)
            cluster.device = "strait.7"
            defer { cluster.stopAll(); cluster.removeDirectory() }
            do {
                let store = try await openStore(url: cluster.storeURL)
                let config = #"{"Network":"10.244.0.0/16","Backend":{"Type":"vxlan","VNI":7,"Port":4789,"MTU":1400,"GBP":true,"Learning":true}}"#
                try await store.put("/strait/network/config", value: Data(config.utf8))
                await store.close()
                try cluster.startAgent(0, flags: ["--ip-blackhole-route", "--healthz-ip", "127.0.0.1",
                                                  "--healthz-port", "\(Self.healthzPort)"])
                let subnet = try cluster.waitForSubnet(0)
                let link = try cluster.nodes[0].run(["ip", "-d", "-o", "link", "show", "strait.7"])
                #expect(link.contains("vxlan id 7") && link.contains("dstport 4789"), "VNI and Port: \(link)")
                #expect(link.contains("mtu 1350"), "MTU 1400 less 50: \(link)")
                #expect(link.contains(" gbp"), "GBP: \(link)")
                #expect(!link.contains("nolearning"), "Learning: \(link)")
                #expect(cluster.subnetFileText(0)?.contains("STRAIT_MTU=1350\n") == true)
                #expect(cluster.subnetFileText(0)?.contains("STRAIT_IPMASQ=false\n") == true, "no --ip-masq: \(cluster.subnetFileText(0) ?? "")")
                #expect(try cluster.nodes[0].run(["ip", "route", "show", "type", "blackhole"]).contains(subnet), "blackhole route")
                let pod = try cluster.addPod(0)
                #expect(try cluster.nodes[0].ping(pod), "the bridge's route stays in front of the blackhole")
                try waitUntil("healthz answers 200") { try healthz(cluster, 0) == "200" }
            } catch {
                print("--- node 0 log ---\n\(cluster.log(0))")
                throw error
            }
        }
    }

    @Test func healthzIs503UntilTheNodeIsProgrammed() async throws {
        try await withTestNamespaces(3) { namespaces in
            // Nothing answers at the store's address: the agent keeps retrying and never programs the node.
            let cluster = try OverlayCluster(namespaces, nodes: 1, storeURL: "etcd://192.168.100.254:2379")
            defer { cluster.stopAll(); cluster.removeDirectory() }
            try cluster.startAgent(0, flags: ["--healthz-ip", "127.0.0.1", "--healthz-port", "\(Self.healthzPort)"])
            try waitUntil("healthz answers") { try healthz(cluster, 0) != "000" }
            #expect(try healthz(cluster, 0) == "503")
            #expect(try !cluster.nodes[0].output(["ip", "link", "show", "strait.1"]).succeeded)
        }
    }

    @Test func forwardRulesKeepPodsTalkingUnderAForwardDropPolicy() async throws {
        try await withTestNamespaces(5) { namespaces in
            let cluster = try OverlayCluster(namespaces, nodes: 2)
            defer { cluster.stopAll(); cluster.removeDirectory() }
            do {
                for node in 0..<2 { try cluster.nodes[node].run(["iptables", "-P", "FORWARD", "DROP"]) }
                var subnets: [Int: String] = [:], macs: [Int: String] = [:], pods: [Int: String] = [:]
                for node in 0..<2 { try cluster.startAgent(node, flags: cluster.extraFlags + ["--no-iptables-forward-rules"]) }
                for node in 0..<2 {
                    subnets[node] = try cluster.waitForSubnet(node)
                    macs[node] = try cluster.vtepMAC(node)
                    pods[node] = try cluster.addPod(node)
                }
                try OverlayEndToEndTests().waitForMesh(cluster, nodes: [0, 1], subnets: subnets, macs: macs)
                #expect(try !cluster.pods[0].ping(pods[1]!), "without the rules the DROP policy cuts pods off")

                for node in 0..<2 {
                    cluster.stopAgent(node)
                    try cluster.startAgent(node)
                }
                for node in 0..<2 {
                    try waitUntil("node \(node) adds its FORWARD rules") {
                        try cluster.nodes[node].run(["iptables", "-S", "FORWARD"]).contains("-j STRAIT-FWD")
                    }
                }
                #expect(try cluster.pods[0].ping(pods[1]!), "pod 0 → pod 1 under FORWARD DROP")
                #expect(try cluster.pods[1].ping(pods[0]!), "pod 1 → pod 0 under FORWARD DROP")
                let chain = try cluster.nodes[0].run(["iptables", "-S", "STRAIT-FWD"])
                #expect(chain.contains("-s 10.244.0.0/16 -j ACCEPT") && chain.contains("-d 10.244.0.0/16 -j ACCEPT"), "\(chain)")
                #expect(try cluster.nodes[0].run(["iptables", "-S", "FORWARD"]).components(separatedBy: "STRAIT-FWD").count == 2,
                        "a restart adds no second jump")
            } catch {
                for node in 0..<2 { print("--- node \(node) log ---\n\(cluster.log(node))") }
                throw error
            }
        }
    }

    @Test func directRoutingRoutesTheSegmentAndEncapsulatesTheRest() async throws {
        try await withTestNamespaces(5) { namespaces in
            let cluster = try OverlayCluster(namespaces, nodes: 2)
            defer { cluster.stopAll(); cluster.removeDirectory() }
            do {
                let store = try await openStore(url: cluster.storeURL)
                let config = #"{"Network":"10.244.0.0/16","Backend":{"Type":"vxlan","DirectRouting":true}}"#
                try await store.put("/strait/network/config", value: Data(config.utf8))
                var subnets: [Int: String] = [:], pods: [Int: String] = [:]
                for node in 0..<2 { try cluster.startAgent(node, flags: []) }
                for node in 0..<2 {
                    subnets[node] = try cluster.waitForSubnet(node)
                    pods[node] = try cluster.addPod(node)
                }
                for (node, peer) in [(0, 1), (1, 0)] {
                    try waitUntil("node \(node) routes node \(peer) directly") {
                        try cluster.nodes[node].run(["ip", "route", "show", subnets[peer]!]).contains("via \(cluster.publicIP(peer)) dev eth0")
                    }
                }
                #expect(try cluster.pods[0].ping(pods[1]!))
                #expect(try cluster.entries(on: 0, subnet: subnets[1]!, mac: cluster.vtepMAC(1), publicIP: cluster.publicIP(1)).none,
                        "no VXLAN entries for a node on the segment")

                // A node on another segment is reached through VXLAN.
                let far = #"{"PublicIP":"10.9.9.9","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"02:00:00:00:09:09"}}"#
                try await store.put("/strait/network/subnets/10.244.250.0-24", value: Data(far.utf8))
                await store.close()
                try waitUntil("node 0 encapsulates to the far node") {
                    try cluster.entries(on: 0, subnet: "10.244.250.0/24", mac: "02:00:00:00:09:09", publicIP: "10.9.9.9").all
                }
            } catch {
                for node in 0..<2 { print("--- node \(node) log ---\n\(cluster.log(node))") }
                throw error
            }
        }
    }

    @Test func theUnderlayIsFoundByAddressNameRegexOrRoute() async throws {
        try await withTestNamespaces(3) { namespaces in
            let cluster = try OverlayCluster(namespaces, nodes: 1)
            defer { cluster.stopAll(); cluster.removeDirectory() }
            let node = cluster.nodes[0]
            try node.run(["ip", "link", "add", "data0", "type", "veth", "peer", "name", "data0p"])
            try node.run(["ip", "link", "set", "data0p", "up"])
            try node.run(["ip", "addr", "add", "10.77.0.1/24", "dev", "data0"])
            try node.run(["ip", "link", "set", "data0", "up"])
            let cases: [([String], String)] = [
                (["--iface", "10.77.0.1"], "underlay data0 10.77.0.1 "),
                (["--iface", "nosuch", "--iface", "eth0"], "underlay eth0 192.168.100.1 "),
                (["--iface-regex", "^data[0-9]$"], "underlay data0 10.77.0.1 "),
                (["--iface-regex", "^10\\.77\\."], "underlay data0 10.77.0.1 "),
                (["--iface-can-reach", "10.77.0.9"], "underlay data0 10.77.0.1 "),
                (["--iface-can-reach", "192.168.100.254"], "underlay eth0 192.168.100.1 "),
            ]
            for (flags, expected) in cases {
                try? FileManager.default.removeItem(atPath: cluster.logFile(0))
                try cluster.startAgent(0, flags: cluster.extraFlags + flags)
                try waitUntil("\(flags) picks the underlay") { cluster.log(0).contains("underlay ") }
                #expect(cluster.log(0).contains(expected), "\(flags): \(cluster.log(0))")
                cluster.stopAgent(0)
            }
            let refused = try cluster.runAgentToExit(0, flags: cluster.extraFlags + ["--iface", "nosuch"])
            #expect(refused.status != 0 && refused.stderr.contains("none of --iface nosuch"), "\(refused.stderr)")
            let badMargin = try cluster.runAgentToExit(0, flags: cluster.extraFlags + ["--subnet-lease-renew-margin", "0"])
            #expect(badMargin.status != 0 && badMargin.stderr.contains("--subnet-lease-renew-margin 0"), "\(badMargin.stderr)")
        }
    }
}

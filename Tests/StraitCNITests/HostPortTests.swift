import Foundation
import StraitTestSupport
import Testing

/// hostPorts keyed by host IP, protocol and port, the hairpin and localhost SNAT `portmap` does,
/// and the `mac` and `dns` capabilities — with real packets.
@Suite struct HostPortTests {
    @Test func twoPodsTakePort8080OnTwoHostIPs() async throws {
        try await withTestNamespaces(4) { namespaces in
            let (node, podA, podB, client) = (namespaces[0], namespaces[1], namespaces[2], namespaces[3])
            let cni = CNIHarness(node: node)
            defer { cni.removeDataDir() }
            try node.connect(to: client, localName: "uplink", remoteName: "eth0")
            try node.run(["ip", "addr", "add", "192.168.77.1/24", "dev", "uplink"])
            try node.run(["ip", "addr", "add", "192.168.77.2/24", "dev", "uplink"])
            try client.run(["ip", "addr", "add", "192.168.77.9/24", "dev", "eth0"])
            func mapping(_ hostIP: String) -> [[String: Any]] {
                [["hostPort": 8080, "containerPort": 80, "protocol": "tcp", "hostIP": hostIP]]
            }
            try cni.add("a", pod: podA, config: cni.config(["runtimeConfig": ["portMappings": mapping("192.168.77.1")]]))
            try cni.add("b", pod: podB, config: cni.config(["runtimeConfig": ["portMappings": mapping("192.168.77.2")]]))
            try podA.startTCPServer(port: 80, reply: "pod-a")
            try podB.startTCPServer(port: 80, reply: "pod-b")
            #expect(try client.tcpRequest("192.168.77.1", 8080) == "pod-a")
            #expect(try client.tcpRequest("192.168.77.2", 8080) == "pod-b")

            // The same host IP, protocol and port twice is refused and leaves pod a's mapping working.
            let clash = try cni.invoke("ADD", containerID: "c", pod: client, ifname: "eth1",
                                       config: cni.config(["runtimeConfig": ["portMappings": mapping("192.168.77.1")]]))
            #expect(clash.status != 0 && clash.code == 105, "\(clash.stdout)")
            #expect(try client.tcpRequest("192.168.77.1", 8080) == "pod-a")

            // DEL of pod a frees only its entry.
            let deleted = try cni.invoke("DEL", containerID: "a", pod: podA,
                                         config: cni.config(["runtimeConfig": ["portMappings": mapping("192.168.77.1")]]))
            #expect(deleted.status == 0)
            #expect(try client.tcpRequest("192.168.77.1", 8080, timeout: 1) == nil)
            #expect(try client.tcpRequest("192.168.77.2", 8080) == "pod-b")
        }
    }

    @Test func aTableAnOlderStraitCNILaidOutIsBroughtUpToDate() async throws {
        try await withTestNamespaces(3) { namespaces in
            let (node, pod, client) = (namespaces[0], namespaces[1], namespaces[2])
            let cni = CNIHarness(node: node)
            defer { cni.removeDataDir() }
            // The layout before host-IP keys: one map by protocol and port, no postrouting chain.
            try node.run(["nft", "-f", "-"], stdin: """
                table ip strait-hostport {
                    map hostports { type inet_proto . inet_service : verdict; }
                    chain prerouting { type nat hook prerouting priority dstnat; fib daddr type local meta l4proto . th dport vmap @hostports; }
                    chain output { type nat hook output priority -100; fib daddr type local meta l4proto . th dport vmap @hostports; }
                }
                """)
            try node.connect(to: client, localName: "uplink", remoteName: "eth0")
            try node.run(["ip", "addr", "add", "192.168.77.1/24", "dev", "uplink"])
            try client.run(["ip", "addr", "add", "192.168.77.9/24", "dev", "eth0"])
            let mappings: [[String: Any]] = [["hostPort": 8080, "containerPort": 80, "protocol": "tcp", "hostIP": "192.168.77.1"]]
            try cni.add("web", pod: pod, config: cni.config(["runtimeConfig": ["portMappings": mappings]]))
            try pod.startTCPServer(port: 80, reply: "upgraded")
            #expect(try client.tcpRequest("192.168.77.1", 8080) == "upgraded")
            let table = try node.run(["nft", "list", "table", "ip", "strait-hostport"])
            #expect(table.contains("map hostports-ip") && table.contains("chain postrouting"), "\(table)")
            #expect(table.components(separatedBy: "vmap @hostports-ip").count == 3, "one address dispatch rule per hook: \(table)")
            let deleted = try cni.invoke("DEL", containerID: "web", pod: pod, config: cni.config(["runtimeConfig": ["portMappings": mappings]]))
            #expect(deleted.status == 0, "\(deleted.stdout)")
            #expect(try client.tcpRequest("192.168.77.1", 8080, timeout: 1) == nil)
        }
    }

    @Test func hairpinAndLocalhostConnectionsAreMasqueradedAsPortmapSnatDoes() async throws {
        try await withTestNamespaces(2) { namespaces in
            let (node, pod) = (namespaces[0], namespaces[1])
            let cni = CNIHarness(node: node)
            defer { cni.removeDataDir() }
            try node.run(["ip", "link", "add", "uplink", "type", "veth", "peer", "name", "uplinkp"])
            try node.run(["ip", "link", "set", "uplinkp", "up"])
            try node.run(["ip", "addr", "add", "192.168.77.1/24", "dev", "uplink"])
            try node.run(["ip", "link", "set", "uplink", "up"])
            let mappings: [[String: Any]] = [["hostPort": 8081, "containerPort": 80, "protocol": "tcp"]]
            try cni.add("web", pod: pod, config: cni.config(["runtimeConfig": ["portMappings": mappings]]))
            // The server replies with the address the connection came from.
            try pod.run(["sh", "-c", "socat TCP-LISTEN:80,fork,reuseaddr SYSTEM:'echo $SOCAT_PEERADDR' >/dev/null 2>&1 &"])
            try pod.waitForListener(port: 80)
            // Hairpin: the pod reaches itself through the node's address; the reply must come back
            // through the node, so the source is the node's bridge address, not the pod's own.
            #expect(try pod.tcpRequest("192.168.77.1", 8081) == "10.250.1.1")
            // Localhost: the node reaches the host port on 127.0.0.1.
            #expect(try node.tcpRequest("127.0.0.1", 8081) == "10.250.1.1")
        }
    }

    @Test func theMacCapabilityAndRuntimeDNSAreHonoured() async throws {
        try await withTestNamespaces(2) { namespaces in
            let (node, pod) = (namespaces[0], namespaces[1])
            let cni = CNIHarness(node: node)
            defer { cni.removeDataDir() }
            let dns: [String: Any] = ["nameservers": ["10.96.0.10"], "search": ["default.svc.cluster.local"]]
            let reply = try cni.invoke("ADD", containerID: "m", pod: pod,
                                       config: cni.config(["runtimeConfig": ["mac": "0E:11:22:33:44:55", "dns": dns]]))
            #expect(reply.status == 0, "\(reply.stdout)")
            #expect(try pod.run(["ip", "-o", "link", "show", "eth0"]).contains("link/ether 0e:11:22:33:44:55"))
            let interfaces = reply.json["interfaces"] as? [[String: Any]] ?? []
            #expect(interfaces.contains { $0["name"] as? String == "eth0" && $0["mac"] as? String == "0e:11:22:33:44:55" })
            let resultDNS = reply.json["dns"] as? [String: Any]
            #expect(resultDNS?["nameservers"] as? [String] == ["10.96.0.10"], "\(reply.stdout)")
            let check = try cni.invoke("CHECK", containerID: "m", pod: pod,
                                       config: cni.config(["prevResult": reply.json, "runtimeConfig": ["mac": "0e:11:22:33:44:55"]]))
            #expect(check.status == 0, "\(check.stdout)")

            // A multicast or malformed MAC is error 7 naming it, and nothing is made.
            for bad in ["01:00:5e:00:00:01", "0e:11:22:33:44"] {
                let before = try cni.kernelState()
                let refused = try cni.invoke("ADD", containerID: "bad", pod: namespaces[1], ifname: "eth1",
                                             config: cni.config(["runtimeConfig": ["mac": bad]]))
                #expect(refused.code == 7 && refused.stdout.contains(bad), "\(refused.stdout)")
                #expect(try cni.kernelState() == before)
            }
            let badArg = try cni.invoke("ADD", containerID: "bad", pod: namespaces[1], ifname: "eth1", args: "MAC=zz")
            #expect(badArg.code == 4 && badArg.stdout.contains("MAC=zz"), "\(badArg.stdout)")
        }
    }
}

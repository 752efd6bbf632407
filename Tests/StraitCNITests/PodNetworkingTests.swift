import Foundation
import StraitTestSupport
import Testing

/// strait-cni run as a runtime runs it, inside a node namespace, wiring pod namespaces; then real
/// packets between them.
@Suite struct PodNetworkingTests {
    @Test func twoPodsReachEachOtherAndTheGateway() async throws {
        try await withTestNamespaces(3) { namespaces in
            let (node, podA, podB) = (namespaces[0], namespaces[1], namespaces[2])
            let cni = CNIHarness(node: node)
            defer { cni.removeDataDir() }
            let addressA = try cni.add("pod-a", pod: podA)
            let addressB = try cni.add("pod-b", pod: podB)
            #expect(addressA == "10.250.1.2")
            #expect(addressB == "10.250.1.3")
            #expect(try podA.ping(addressB))
            #expect(try podB.ping(addressA))
            #expect(try podA.ping("10.250.1.1"))
            try podB.startTCPServer(port: 5000, reply: "hello from b")
            #expect(try podA.tcpRequest(addressB, 5000) == "hello from b")
            // What the kernel says matches the result: MTU, MAC from the IP, default route.
            let link = try podA.run(["ip", "-o", "link", "show", "eth0"])
            #expect(link.contains("mtu 1400"))
            #expect(link.contains("0a:58:0a:fa:01:02"))
            #expect(try podA.run(["ip", "route", "show", "default"]).contains("via 10.250.1.1 dev eth0"))
            #expect(try node.run(["ip", "-o", "addr", "show", "strait0"]).contains("10.250.1.1/24"))
            #expect(try node.run(["cat", "/proc/sys/net/ipv4/ip_forward"]).hasPrefix("1"))
        }
    }

    /// A node whose subnet changed keeps its bridge: ADD puts the new gateway on it and takes the old
    /// subnet's address off (the address check is a refused add; the bridge's addresses are listed only
    /// when the gateway had to be added). A second ADD leaves the bridge as it is.
    @Test func theBridgeTradesAnOlderSubnetsGatewayForTheNewOne() async throws {
        try await withTestNamespaces(3) { namespaces in
            let (node, podA, podB) = (namespaces[0], namespaces[1], namespaces[2])
            let cni = CNIHarness(node: node)
            defer { cni.removeDataDir() }
            _ = try node.run(["ip", "link", "add", "strait0", "address", "02:5b:00:00:00:01", "type", "bridge"])
            _ = try node.run(["ip", "addr", "add", "10.250.9.1/24", "dev", "strait0"])
            _ = try node.run(["ip", "link", "set", "strait0", "up"])

            let addressA = try cni.add("pod-a", pod: podA)
            let afterFirst = try node.run(["ip", "-o", "-4", "addr", "show", "strait0"])
            #expect(afterFirst.contains("10.250.1.1/24"))
            #expect(!afterFirst.contains("10.250.9.1"), "the older subnet's gateway stayed: \(afterFirst)")
            #expect(try podA.ping("10.250.1.1"))

            let addressB = try cni.add("pod-b", pod: podB)
            let afterSecond = try node.run(["ip", "-o", "-4", "addr", "show", "strait0"])
            #expect(afterSecond.split(separator: "\n").count == 1, "the bridge has other addresses: \(afterSecond)")
            #expect(try podB.ping(addressA))
            #expect(try podA.ping(addressB))
        }
    }

    @Test func resultHasInterfacesIPsAndRoutesShapedForTheVersion() async throws {
        try await withTestNamespaces(3) { namespaces in
            var cni = CNIHarness(node: namespaces[0])
            defer { cni.removeDataDir() }
            let modern = try cni.invoke("ADD", containerID: "new", pod: namespaces[1], config: cni.config(["dns": ["nameservers": ["10.96.0.10"]]]))
            #expect(modern.status == 0)
            let interfaces = modern.json["interfaces"] as? [[String: Any]] ?? []
            #expect(interfaces.count == 2)
            #expect(interfaces.last?["sandbox"] as? String == namespaces[1].path)
            #expect(interfaces.first?["sandbox"] == nil)
            let ip = (modern.json["ips"] as? [[String: Any]])?.first
            #expect(ip?["gateway"] as? String == "10.250.1.1")
            #expect(ip?["interface"] as? Int == 1)
            #expect(ip?["version"] == nil)
            #expect((modern.json["routes"] as? [[String: Any]])?.first?["dst"] as? String == "0.0.0.0/0")
            #expect((modern.json["dns"] as? [String: Any])?["nameservers"] as? [String] == ["10.96.0.10"])

            cni.cniVersion = "0.3.1"
            let old = try cni.invoke("ADD", containerID: "old", pod: namespaces[2])
            #expect(old.status == 0)
            #expect(old.json["cniVersion"] as? String == "0.3.1")
            #expect((old.json["ips"] as? [[String: Any]])?.first?["version"] as? String == "4")
        }
    }

    @Test func hostPortReachesThePodsServer() async throws {
        try await withTestNamespaces(3) { namespaces in
            let (node, pod, client) = (namespaces[0], namespaces[1], namespaces[2])
            let cni = CNIHarness(node: node)
            defer { cni.removeDataDir() }
            let mappings: [[String: Any]] = [["hostPort": 30080, "containerPort": 8080, "protocol": "tcp"]]
            try cni.add("web", pod: pod, config: cni.config(["runtimeConfig": ["portMappings": mappings]]))
            try pod.startTCPServer(port: 8080, reply: "served by the pod")
            // A client outside the node reaches the node's own address on the host port.
            try node.connect(to: client, localName: "uplink", remoteName: "eth0")
            try node.run(["ip", "addr", "add", "192.168.77.1/30", "dev", "uplink"])
            try client.run(["ip", "addr", "add", "192.168.77.2/30", "dev", "eth0"])
            #expect(try client.tcpRequest("192.168.77.1", 30080) == "served by the pod")
            // DEL removes the mapping: the port no longer answers, and the table holds no trace of the pod.
            let deleted = try cni.invoke("DEL", containerID: "web", pod: pod, config: cni.config(["runtimeConfig": ["portMappings": mappings]]))
            #expect(deleted.status == 0)
            #expect(try client.tcpRequest("192.168.77.1", 30080, timeout: 1) == nil)
            #expect(!(try node.run(["nft", "list", "table", "ip", "strait-hostport"]).contains("30080")))
        }
    }

    @Test func ipMasqLetsThePodReachBeyondTheNodeWithTheNodesAddress() async throws {
        try await withTestNamespaces(3) { namespaces in
            let (node, pod, outside) = (namespaces[0], namespaces[1], namespaces[2])
            let cni = CNIHarness(node: node)
            defer { cni.removeDataDir() }
            // "outside" knows only the link to the node: replies reach the pod only if it was masqueraded.
            try node.connect(to: outside, localName: "uplink", remoteName: "eth0")
            try node.run(["ip", "addr", "add", "192.168.77.1/30", "dev", "uplink"])
            try outside.run(["ip", "addr", "add", "192.168.77.2/30", "dev", "eth0"])
            try outside.run(["sh", "-c", "socat TCP-LISTEN:7000,fork,reuseaddr SYSTEM:'echo $SOCAT_PEERADDR' >/dev/null 2>&1 &"])
            try outside.waitForListener(port: 7000)
            let config = cni.config(["ipMasq": true])
            try cni.add("masq", pod: pod, config: config)
            #expect(try pod.tcpRequest("192.168.77.2", 7000) == "192.168.77.1")
            let rules = try node.run(["nft", "list", "table", "ip", "strait-masq"])
            #expect(rules.contains("ip daddr != 10.250.1.0/24 ip daddr != 224.0.0.0/4 masquerade"))
            #expect(rules.contains("10.250.1.2 : goto masq-"))
            #expect(try cni.invoke("DEL", containerID: "masq", pod: pod, config: config).status == 0)
            #expect(!(try node.run(["nft", "list", "table", "ip", "strait-masq"]).contains("masq-")))
        }
    }

    @Test func deleteIsIdempotentAndFreesTheAddressWhenTheNamespaceIsGone() async throws {
        try await withTestNamespaces(3) { namespaces in
            let (node, pod, other) = (namespaces[0], namespaces[1], namespaces[2])
            let cni = CNIHarness(node: node)
            defer { cni.removeDataDir() }
            try cni.add("first", pod: pod)
            #expect(try cni.invoke("DEL", containerID: "first", pod: pod).status == 0)
            #expect(try cni.invoke("DEL", containerID: "first", pod: pod).status == 0)
            #expect(try cni.leases().isEmpty)
            #expect(try cni.hostVeths().isEmpty)
            // The namespace is deleted before DEL (the runtime lost it): the lease still goes.
            try cni.add("second", pod: other)
            try Command.run(["ip", "netns", "delete", other.name])
            #expect(try cni.invoke("DEL", containerID: "second", pod: other).status == 0)
            #expect(try cni.invoke("DEL", containerID: "second", environment: ["CNI_NETNS": nil]).status == 0)
            #expect(try cni.leases().isEmpty)
            #expect(try cni.invoke("DEL", containerID: "never-added", pod: pod).status == 0)
        }
    }

    @Test func checkPassesAfterAddAndNamesARemovedAddress() async throws {
        try await withTestNamespaces(2) { namespaces in
            let (node, pod) = (namespaces[0], namespaces[1])
            let cni = CNIHarness(node: node)
            defer { cni.removeDataDir() }
            let added = try cni.invoke("ADD", containerID: "checked", pod: pod)
            let prevResult = try JSONSerialization.jsonObject(with: Data(added.stdout.utf8))
            let config = cni.config(["prevResult": prevResult])
            #expect(try cni.invoke("CHECK", containerID: "checked", pod: pod, config: config).status == 0)
            try pod.run(["ip", "addr", "del", "10.250.1.2/24", "dev", "eth0"])
            let failed = try cni.invoke("CHECK", containerID: "checked", pod: pod, config: config)
            #expect(failed.status != 0)
            #expect(failed.code == 104)
            #expect((failed.json["msg"] as? String ?? "").contains("10.250.1.2/24"))
        }
    }

    @Test func garbageCollectionFreesExactlyTheStaleLeasesAndVeths() async throws {
        try await withTestNamespaces(4) { namespaces in
            let node = namespaces[0]
            let cni = CNIHarness(node: node)
            defer { cni.removeDataDir() }
            for (index, pod) in namespaces.dropFirst().enumerated() { try cni.add("gc-\(index)", pod: pod) }
            #expect(try cni.hostVeths().count == 3)
            let valid: [[String: String]] = [["containerID": "gc-1", "ifname": "eth0"]]
            let reply = try cni.invoke("GC", config: cni.config(["cni.dev/valid-attachments": valid]), environment: ["CNI_CONTAINERID": nil, "CNI_IFNAME": nil])
            #expect(reply.status == 0)
            #expect(Array(try cni.leases().keys) == ["gc-1/eth0"])
            #expect(try cni.hostVeths().count == 1)
            #expect(try namespaces[2].ping("10.250.1.1"))
        }
    }

    @Test func statusIsFiftyWhenThePoolIsExhausted() async throws {
        try await withTestNamespaces(2) { namespaces in
            var cni = CNIHarness(node: namespaces[0])
            defer { cni.removeDataDir() }
            cni.subnet = "10.250.9.0/30"  // room for exactly one pod
            #expect(try cni.invoke("STATUS").status == 0)
            try cni.add("only", pod: namespaces[1])
            let status = try cni.invoke("STATUS")
            #expect(status.status != 0)
            #expect(status.code == 50)
            #expect((status.json["msg"] as? String ?? "").contains("no free address"))
        }
    }
}

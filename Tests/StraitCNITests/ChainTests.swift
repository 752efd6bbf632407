import Foundation
import StraitCNI
import StraitTestSupport
import Testing

/// strait-cni first in a chain with Debian's reference plugins (`containernetworking-plugins`):
/// `portmap` maps a host port, `bandwidth` shapes the host veth strait-cni's result names, `tuning`
/// sets a sysctl in the pod. ADD, CHECK and DEL of the whole chain as libcni runs it.
@Suite(.serialized) struct ChainTests {
    static let transferBytes = 2_000_000

    /// Sends `transferBytes` from the node to `address`:5001 and returns how long it took.
    func transfer(from node: TestNamespace, to pod: TestNamespace, _ address: String) throws -> Duration {
        try pod.run(["sh", "-c", "nc -l 5001 >/dev/null 2>&1 &"])
        try pod.waitForListener(port: 5001)
        let start = ContinuousClock.now
        let output = try node.output(["sh", "-c", "head -c \(Self.transferBytes) /dev/zero | timeout 60 nc -N \(address) 5001"])
        guard output.succeeded else { throw CommandFailure(arguments: ["nc", address], output: output, reason: "transfer failed") }
        return ContinuousClock.now - start
    }

    @Test func portmapBandwidthAndTuningChainAfterStraitCNI() async throws {
        guard FileManager.default.fileExists(atPath: "\(PluginChain.referencePlugins)/portmap") else {
            Issue.record("containernetworking-plugins is not installed (scripts/install-deps)")
            return
        }
        try await withTestNamespaces(3) { namespaces in
            let (node, limited, unlimited) = (namespaces[0], namespaces[1], namespaces[2])
            let dataDir = FileManager.default.temporaryDirectory.appendingPathComponent("strait-chain-\(UUID())").path
            defer { try? FileManager.default.removeItem(atPath: dataDir) }
            var chain = PluginChain(node: node, name: "strait-chain", cniVersion: "1.0.0", plugins: [
                ["type": "strait-cni", "subnet": "10.250.1.0/24", "dataDir": dataDir, "bridge": "strait0", "mtu": 1400],
                ["type": "portmap", "capabilities": ["portMappings": true], "snat": true],
                ["type": "bandwidth", "capabilities": ["bandwidth": true]],
                ["type": "tuning", "sysctl": ["net.ipv4.conf.eth0.arp_ignore": "1"]],
            ])
            chain.capabilityArgs = [
                "portMappings": [["hostPort": 8082, "containerPort": 80, "protocol": "tcp"]],
                "bandwidth": ["ingressRate": 8_000_000, "ingressBurst": 80_000, "egressRate": 8_000_000, "egressBurst": 80_000],
            ]
            let result = try chain.add(containerID: "limited", pod: limited)
            let interfaces = result["interfaces"] as? [[String: Any]] ?? []
            let hostVeth = try #require(interfaces.first { $0["sandbox"] == nil }?["name"] as? String, "\(result)")
            let address = try #require((result["ips"] as? [[String: Any]])?.first?["address"] as? String)
            let podIP = String(address.prefix { $0 != "/" })

            // portmap: the host port reaches the pod's server.
            try limited.startTCPServer(port: 80, reply: "limited-pod")
            #expect(try node.tcpRequest("10.250.1.1", 8082) == "limited-pod")
            // tuning: the sysctl is set in the pod.
            #expect(try limited.run(["sysctl", "-n", "net.ipv4.conf.eth0.arp_ignore"]).trimmingCharacters(in: .whitespacesAndNewlines) == "1")
            // bandwidth: a token bucket on the host veth strait-cni's result named, and a bounded
            // transfer much slower than to a pod without a limit.
            #expect(try node.run(["tc", "qdisc", "show", "dev", hostVeth]).contains("tbf"), "no tbf on \(hostVeth)")
            var free = chain
            free.capabilityArgs["bandwidth"] = nil
            let freeResult = try free.add(containerID: "unlimited", pod: unlimited)
            let freeIP = try #require((freeResult["ips"] as? [[String: Any]])?.first?["address"] as? String).prefix { $0 != "/" }
            let slow = try transfer(from: node, to: limited, podIP)
            let fast = try transfer(from: node, to: unlimited, String(freeIP))
            print("bandwidth: \(Self.transferBytes) bytes in \(slow) at 8 Mbit/s, \(fast) unlimited")
            #expect(slow > fast * 5, "limited \(slow), unlimited \(fast)")

            try chain.check(containerID: "limited", pod: limited, result: result)

            try chain.delete(containerID: "limited", pod: limited, result: result)
            try free.delete(containerID: "unlimited", pod: unlimited, result: freeResult)
            #expect(try !node.output(["ip", "link", "show", hostVeth]).succeeded, "the host veth is gone")
            #expect(try !node.run(["ip", "-o", "link", "show"]).contains("bwp"), "no ifb left by bandwidth")
            #expect(try !node.run(["iptables", "-t", "nat", "-S"]).contains("8082"), "portmap's rules are gone")
            #expect(try node.tcpRequest("10.250.1.1", 8082, timeout: 1) == nil)
            let leased = try IPAM.inspect(dataDir: dataDir, network: "strait-chain").map(\.address.description)
            #expect(!leased.contains(podIP), "the lease is released: \(leased)")
            // A repeated DEL of the whole chain succeeds (the spec's idempotent DEL).
            try chain.delete(containerID: "limited", pod: limited, result: result)
        }
    }
}

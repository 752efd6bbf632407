import Foundation
import StraitTestSupport
import Testing

/// The same three nodes against a real etcd, which runs inside the underlay namespace on the
/// bridge's address (192.168.100.254): the nodes reach it over the test bridge and nothing else does.
@Suite(.serialized) struct OverlayEtcdTests {
    /// etcd's v3 JSON gateway, from inside the underlay namespace (keys and values are base64).
    func etcdCall(_ cluster: OverlayCluster, _ path: String, _ body: [String: String], host: String = "127.0.0.1") throws {
        let json = String(decoding: try JSONSerialization.data(withJSONObject: body), as: UTF8.self)
        let output = try cluster.underlay.output(["curl", "-sf", "--max-time", "5", "-X", "POST",
                                                  "http://\(host):2379/v3/kv/\(path)", "-d", json])
        guard output.succeeded else { throw CommandFailure(arguments: ["curl", path], output: output, reason: "etcd \(path) failed") }
    }

    func b64(_ text: String) -> String { Data(text.utf8).base64EncodedString() }

    @Test func meshSurvivesAnEtcdOutageAndCatchesUp() async throws {
        try await withTestNamespaces(7) { namespaces in
            let cluster = try OverlayCluster(namespaces, nodes: 3, storeURL: "")
            defer { cluster.stopAll(); cluster.removeDirectory() }
            try await TestEtcd.with(namespace: namespaces[0], host: "192.168.100.254") { etcd in
                cluster.storeURL = etcd.storeURL
                do {
                    let tests = OverlayEndToEndTests()
                    let (subnets, macs, pods) = try tests.bringUp(cluster)
                    #expect(Set(subnets.values).count == 3)
                    try tests.checkFullMesh(cluster, pods)

                    // A ping from pod 0 to pod 1 runs across the whole outage (~36 s, one every 0.2 s).
                    let pinger = cluster.pods[0]
                    let target = pods[1]!
                    let ping = Task.detached { try pinger.output(["ping", "-q", "-i", "0.2", "-c", "180", "-W", "1", target]) }

                    // etcd goes down; node 2 is decommissioned meanwhile (its agent stops, its lease
                    // is deleted) and a new node's lease appears — written while etcd answered only on
                    // the underlay's loopback, so the agents saw none of it happen.
                    etcd.stop()
                    cluster.stopAgent(2)
                    try await Task.sleep(for: .seconds(12))
                    #expect(try cluster.pods[1].tcpRequest(pods[0]!, 5000) == "pod0", "TCP while etcd is down")
                    try await etcd.restart(onlyLoopback: true)
                    try etcdCall(cluster, "deleterange", ["key": b64("/strait/network/subnets/\(subnets[2]!.replacingOccurrences(of: "/", with: "-"))")])
                    let newcomer = #"{"PublicIP":"192.168.100.77","BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"02:00:00:00:00:77"}}"#
                    try etcdCall(cluster, "put", ["key": b64("/strait/network/subnets/10.244.250.0-24"), "value": b64(newcomer)])
                    etcd.stop()
                    try await Task.sleep(for: .seconds(18))
                    #expect(try cluster.pods[0].tcpRequest(pods[1]!, 5000) == "pod1", "TCP while etcd is down")
                    #expect(try cluster.pods[1].ping(pods[0]!), "ping while etcd is down")
                    try await etcd.restart()

                    for node in [0, 1] {
                        try waitUntil("node \(node) drops node 2 after etcd returns", seconds: 60) {
                            try cluster.entries(on: node, subnet: subnets[2]!, mac: macs[2]!, publicIP: cluster.publicIP(2)).none
                        }
                        try waitUntil("node \(node) programs the newcomer", seconds: 60) {
                            try cluster.entries(on: node, subnet: "10.244.250.0/24", mac: "02:00:00:00:00:77",
                                                publicIP: "192.168.100.77").all
                        }
                    }
                    let pingOutput = try await ping.value
                    #expect(pingOutput.stdout.contains("180 received") && pingOutput.stdout.contains(" 0% packet loss"),
                            "forwarding never stopped: \(pingOutput.stdout)")
                    try tests.checkFullMesh(cluster, pods.filter { $0.key != 2 })
                } catch {
                    for node in 0..<3 { print("--- node \(node) log ---\n\(cluster.log(node))") }
                    throw error
                }
            }
        }
    }
}

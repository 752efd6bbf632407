import Foundation
import StraitModel
import StraitOverlay
import StraitTestSupport
import Testing

/// `strait overlay --kube-subnet-mgr` against a real kube-apiserver: two nodes on a test bridge,
/// each running the built agent as the user `deploy/rbac.yaml`'s `strait-overlay` role is bound to,
/// their subnets from Node objects made with `kubectl`, pods wired by the built `strait-cni`.
@Suite(.serialized, .enabled(if: TestKubeAPIServer.isAvailable,
                             Comment(rawValue: TestKubeAPIServer.unavailableReason ?? "")))
struct KubeSubnetManagerTests {
    /// Two nodes and their pods on `OverlayTestNetwork` (the API server runs in its underlay).
    struct Cluster {
        let network: OverlayTestNetwork
        var underlay: TestNamespace { network.underlay }
        var pods: [TestNamespace] { network.pods }
        let device = "strait.1"

        init(_ namespaces: [TestNamespace]) throws {
            network = try OverlayTestNetwork(namespaces, nodes: 2, label: "kube-overlay")
        }

        func publicIP(_ node: Int) -> String { network.publicIP(node) }
        func subnetFile(_ node: Int) -> String { "\(network.nodeDirectory(node))/subnet.env" }
        func log(_ node: Int) -> String { network.log(node) }

        /// The built agent in the node's namespace; its output goes to the node's log.
        func startAgent(_ node: Int, kubeconfig: String, netConf: String) throws -> pid_t {
            try network.start([builtProduct("strait"), "overlay", "--kube-subnet-mgr", "--kubeconfig-file", kubeconfig,
                               "--net-config-path", netConf, "--node-name", "node-\(node)",
                               "--subnet-file", subnetFile(node)], on: node)
        }

        /// STRAIT_SUBNET from the node's subnet file, once written.
        func subnetLine(_ node: Int) -> String? {
            let text = (try? String(contentsOfFile: subnetFile(node), encoding: .utf8)) ?? ""
            return text.split(separator: "\n").first { $0.hasPrefix("STRAIT_SUBNET=") }.map(String.init)
        }

        func vtepMAC(_ node: Int) throws -> String {
            guard let mac = try network.vtepMAC(node, device: device) else {
                throw CommandFailure(arguments: ["ip", "link", "show", device], output: nil, reason: "no \(device)")
            }
            return mac
        }

        /// The pod made by the built strait-cni from the node's subnet file; returns its address.
        func addPod(_ node: Int) throws -> String { try network.addPod(node, subnetFile: subnetFile(node))[0] }

        /// What `node` holds for a peer: route, permanent neighbour, FDB entry.
        func entries(on node: Int, subnet: String, mac: String, publicIP: String) throws -> OverlayPeerEntries {
            try network.peerEntries(on: node, device: device, subnet: subnet, mac: mac, publicIP: publicIP)
        }
    }

    @Test func twoNodesPingOverVXLANAndADeletedNodeIsForgotten() async throws {
        try await withTestNamespaces(5) { namespaces in
            let cluster = try Cluster(namespaces)
            defer { cluster.network.removeDirectory() }
            let directory = cluster.network.directory
            // On every address of the underlay namespace, so the nodes reach it over the bridge.
            try await TestKubeAPIServer.with(namespace: cluster.underlay, arguments: ["--bind-address=0.0.0.0"]) { server in
                try server.kubectl(["apply", "-f", TestKubeAPIServer.repositoryRoot + "/deploy/rbac.yaml"])
                try server.kubectl(["create", "clusterrolebinding", "strait-overlay-user", "--clusterrole=strait-overlay",
                                    "--user=strait-proxy"])
                try server.apply("""
                    apiVersion: v1
                    kind: Node
                    metadata: {name: node-0}
                    spec: {podCIDR: 10.244.1.0/24, podCIDRs: [10.244.1.0/24]}
                    ---
                    apiVersion: v1
                    kind: Node
                    metadata: {name: node-1}
                    spec: {podCIDR: 10.244.2.0/24, podCIDRs: [10.244.2.0/24]}
                    """)
                // The API server's own certificate names 127.0.0.1 only; the nodes reach it by the bridge.
                let kubeconfig = directory + "/overlay.kubeconfig"
                try """
                    apiVersion: v1
                    kind: Config
                    clusters: [{name: c, cluster: {server: "https://192.168.100.254:\(server.port)", insecure-skip-tls-verify: true}}]
                    users: [{name: u, user: {token: \(TestKubeAPIServer.proxyToken)}}]
                    contexts: [{name: x, context: {cluster: c, user: u}}]
                    current-context: x
                    """.write(toFile: kubeconfig, atomically: true, encoding: .utf8)
                let netConf = directory + "/net-conf.json"
                try #"{"Network": "10.244.0.0/16", "Backend": {"Type": "vxlan"}}"#
                    .write(toFile: netConf, atomically: true, encoding: .utf8)

                var agents: [pid_t] = []
                defer {
                    for pid in agents { kill(pid, SIGTERM) }
                    for pid in agents { Command.waitForExit(pid) }
                }
                for node in 0..<2 { agents.append(try cluster.startAgent(node, kubeconfig: kubeconfig, netConf: netConf)) }

                // Each node's subnet is its Node's podCIDR.
                for (node, subnet) in [(0, "10.244.1.1/24"), (1, "10.244.2.1/24")] {
                    #expect(try await eventually("node \(node) writes its subnet file") {
                        cluster.subnetLine(node) == "STRAIT_SUBNET=\(subnet)"
                    }, "\(cluster.log(node))")
                }
                let macs = [try cluster.vtepMAC(0), try cluster.vtepMAC(1)]
                // The VTEP data is on each Node, as annotations.
                for node in 0..<2 {
                    let annotations = try server.kubectl(["get", "node", "node-\(node)", "-o",
                                                          "jsonpath={.metadata.annotations}"])
                    let parsed = try JSONSerialization.jsonObject(with: Data(annotations.utf8)) as? [String: String] ?? [:]
                    #expect(parsed["strait.io/public-ip"] == cluster.publicIP(node), "\(parsed)")
                    #expect(parsed["strait.io/backend-type"] == "vxlan", "\(parsed)")
                    #expect(parsed["strait.io/backend-data"] == #"{"VNI":1,"VtepMAC":"\#(macs[node])"}"#, "\(parsed)")
                    #expect(parsed["strait.io/kube-subnet-manager"] == "true", "\(parsed)")
                }
                // Each node programs the other from its Node, and says it is programmed.
                for (node, peer, subnet) in [(0, 1, "10.244.2.0/24"), (1, 0, "10.244.1.0/24")] {
                    #expect(try await eventually("node \(node) programs node \(peer)") {
                        try cluster.entries(on: node, subnet: subnet, mac: macs[peer],
                                            publicIP: cluster.publicIP(peer)).all
                    }, "\(cluster.log(node))")
                    #expect(try await eventually("node-\(node)'s NetworkUnavailable is False") {
                        let jsonPath = #"jsonpath={.status.conditions[?(@.type=="NetworkUnavailable")].status}"#
                        return try server.kubectl(["get", "node", "node-\(node)", "-o", jsonPath])
                            .trimmingCharacters(in: .whitespacesAndNewlines) == "False"
                    })
                }

                // Real packets between the pods, through the VXLAN devices.
                let pods = [try cluster.addPod(0), try cluster.addPod(1)]
                #expect(pods[0].hasPrefix("10.244.1.") && pods[1].hasPrefix("10.244.2."), "\(pods)")
                #expect(try cluster.pods[0].ping(pods[1]), "pod 0 → pod 1")
                #expect(try cluster.pods[1].ping(pods[0]), "pod 1 → pod 0")

                // node-1's Node is deleted: node 0 forgets it (route, neighbour and FDB entry).
                try server.kubectl(["delete", "node", "node-1"])
                #expect(try await eventually("node 0 removes node 1's entries") {
                    try cluster.entries(on: 0, subnet: "10.244.2.0/24", mac: macs[1], publicIP: cluster.publicIP(1)).none
                }, "\(cluster.log(0))")
                #expect(!(try cluster.pods[0].ping(pods[1])), "pod 1 is unreachable once its node is gone")
            }
        }
    }

    @Test func storeFlagsABadPrefixAndAMissingNetConfAreRefused() throws {
        let result = try Command.output([builtProduct("strait"), "overlay", "--kube-subnet-mgr",
                                         "--cluster-cidr", "10.244.0.0/16"])
        #expect(!result.succeeded && result.stderr.contains("--cluster-cidr is for the store's leases"), "\(result.stderr)")
        let prefix = try Command.output([builtProduct("strait"), "overlay", "--kube-subnet-mgr",
                                         "--kube-annotation-prefix", "Bad_Prefix"])
        #expect(!prefix.succeeded && prefix.stderr.contains("is not a DNS subdomain"), "\(prefix.stderr)")
        let missing = try Command.output([builtProduct("strait"), "overlay", "--kube-subnet-mgr",
                                          "--net-config-path", "/nonexistent/net-conf.json"])
        #expect(!missing.succeeded && missing.stderr.contains("--net-config-path /nonexistent/net-conf.json: no such file"),
                "\(missing.stderr)")
    }
}

/// The annotations one node writes are the lease every other node reads.
struct NodeAnnotationsTests {
    @Test func leaseRoundTripsThroughAnnotations() throws {
        let annotations = try NodeAnnotations()
        let lease = SubnetLease(subnet: try IPv4CIDR(networkParsing: "10.244.3.0/24"),
                                publicIP: try IPv4Address(parsing: "192.168.1.3"), backendType: "vxlan", vni: 1,
                                vtepMAC: "02:11:22:33:44:55")
        var node = Node(metadata: ObjectMeta(name: "n3", annotations: annotations.values(for: lease)),
                        spec: NodeSpec(podCIDR: "10.244.3.0/24", podCIDRs: ["10.244.3.0/24"]))
        #expect(annotations.lease(of: node) == lease)
        #expect(node.metadata.annotations["strait.io/backend-data"] == #"{"VNI":1,"VtepMAC":"02:11:22:33:44:55"}"#)
        // No pod CIDR, or no agent's annotations: no lease (not a peer yet).
        node.spec = NodeSpec()
        #expect(annotations.lease(of: node) == nil)
        let bare = Node(metadata: ObjectMeta(name: "n4"), spec: NodeSpec(podCIDRs: ["10.244.4.0/24"]))
        #expect(annotations.lease(of: bare) == nil)
        #expect(throws: OverlayError.self) { try NodeAnnotations(prefix: "Not_A.Domain") }
        #expect(try NodeAnnotations(prefix: "flannel.alpha.coreos.com").publicIP == "flannel.alpha.coreos.com/public-ip")
    }
}

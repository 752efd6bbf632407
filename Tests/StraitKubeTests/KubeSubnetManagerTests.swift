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
    /// Namespaces: the underlay (bridge `br0` 192.168.100.254/24 and the API server), two nodes
    /// (`eth0` 192.168.100.N/24), a pod per node.
    struct Cluster {
        let underlay: TestNamespace
        let nodes: [TestNamespace]
        let pods: [TestNamespace]
        let directory: String
        let device = "strait.1"

        init(_ namespaces: [TestNamespace], directory: String) throws {
            underlay = namespaces[0]
            nodes = [namespaces[1], namespaces[2]]
            pods = [namespaces[3], namespaces[4]]
            self.directory = directory
            try underlay.run(["ip", "link", "add", "br0", "address", "02:00:00:64:00:fe", "type", "bridge"])
            try underlay.run(["ip", "addr", "add", "192.168.100.254/24", "dev", "br0"])
            try underlay.run(["ip", "link", "set", "br0", "up"])
            for (index, node) in nodes.enumerated() {
                try FileManager.default.createDirectory(atPath: nodeDirectory(index), withIntermediateDirectories: true)
                try node.connect(to: underlay, localName: "eth0", remoteName: "veth\(index)")
                try underlay.run(["ip", "link", "set", "veth\(index)", "master", "br0"])
                try node.run(["ip", "addr", "add", "\(publicIP(index))/24", "dev", "eth0"])
                try node.run(["ip", "route", "add", "default", "via", "192.168.100.254"])
            }
        }

        func publicIP(_ node: Int) -> String { "192.168.100.\(node + 1)" }
        func nodeDirectory(_ node: Int) -> String { "\(directory)/node\(node)" }
        func subnetFile(_ node: Int) -> String { "\(nodeDirectory(node))/subnet.env" }
        func log(_ node: Int) -> String {
            (try? String(contentsOfFile: "\(nodeDirectory(node))/overlay.log", encoding: .utf8)) ?? ""
        }

        /// The built agent in the node's namespace; its output goes to `overlay.log`.
        func startAgent(_ node: Int, kubeconfig: String, netConf: String) throws -> pid_t {
            let command = [builtProduct("strait"), "overlay", "--kube-subnet-mgr", "--kubeconfig-file", kubeconfig,
                           "--net-config-path", netConf, "--node-name", "node-\(node)",
                           "--subnet-file", subnetFile(node)].joined(separator: " ")
            return try Command.start(["ip", "netns", "exec", nodes[node].name, "sh", "-c",
                                      "exec \(command) >>\(nodeDirectory(node))/overlay.log 2>&1"], stdin: "")
        }

        /// STRAIT_SUBNET from the node's subnet file, once written.
        func subnetLine(_ node: Int) -> String? {
            let text = (try? String(contentsOfFile: subnetFile(node), encoding: .utf8)) ?? ""
            return text.split(separator: "\n").first { $0.hasPrefix("STRAIT_SUBNET=") }.map(String.init)
        }

        func vtepMAC(_ node: Int) throws -> String {
            let words = try nodes[node].run(["ip", "-o", "link", "show", device]).split(separator: " ")
            return String(words[words.firstIndex(of: "link/ether")! + 1])
        }

        /// The pod made by the built strait-cni from the node's subnet file; returns its address.
        func addPod(_ node: Int) throws -> String {
            let config = """
                {"cniVersion":"1.1.0","name":"strait","type":"strait-cni","subnetFile":"\(subnetFile(node))",\
                "dataDir":"\(nodeDirectory(node))/cni"}
                """
            let env = ["CNI_COMMAND=ADD", "CNI_CONTAINERID=pod\(node)", "CNI_IFNAME=eth0", "CNI_NETNS=\(pods[node].path)",
                       "CNI_PATH=/opt/cni/bin", "PATH=/usr/sbin:/usr/bin:/sbin:/bin"]
            let output = try Command.output(["ip", "netns", "exec", nodes[node].name, "env", "-i"] + env
                                            + [builtProduct("strait-cni")], stdin: config)
            guard output.succeeded,
                  let json = try JSONSerialization.jsonObject(with: Data(output.stdout.utf8)) as? [String: Any],
                  let address = (json["ips"] as? [[String: Any]])?.first?["address"] as? String else {
                throw CommandFailure(arguments: ["strait-cni", "ADD"], output: output, reason: "pod on node \(node) not made")
            }
            return String(address.prefix { $0 != "/" })
        }

        /// Whether `node` holds the route, permanent neighbour and FDB entry for a peer.
        func entries(on node: Int, subnet: String, mac: String, publicIP: String) throws -> (Bool, Bool, Bool) {
            let vtep = String(subnet.prefix { $0 != "/" })
            let routes = try nodes[node].output(["ip", "route", "show", "dev", device]).stdout
            let neighbours = try nodes[node].output(["ip", "neigh", "show", "dev", device]).stdout
            let fdb = try nodes[node].output(["bridge", "fdb", "show", "dev", device]).stdout
            return (routes.split(separator: "\n").contains { $0.hasPrefix("\(subnet) via \(vtep) ") },
                    neighbours.split(separator: "\n").contains { $0.hasPrefix("\(vtep) lladdr \(mac) ") },
                    fdb.split(separator: "\n").contains { $0.hasPrefix("\(mac) dst \(publicIP) ") })
        }
    }

    @Test func twoNodesPingOverVXLANAndADeletedNodeIsForgotten() async throws {
        let directory = NSTemporaryDirectory() + "strait-kube-overlay-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try await withTestNamespaces(5) { namespaces in
            let cluster = try Cluster(namespaces, directory: directory)
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
                        let (route, neighbour, fdb) = try cluster.entries(on: node, subnet: subnet, mac: macs[peer],
                                                                          publicIP: cluster.publicIP(peer))
                        return route && neighbour && fdb
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
                    let (route, neighbour, fdb) = try cluster.entries(on: 0, subnet: "10.244.2.0/24", mac: macs[1],
                                                                      publicIP: cluster.publicIP(1))
                    return !route && !neighbour && !fdb
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

import Foundation
import StraitTestSupport

/// The overlay's nodes on `OverlayTestNetwork`, for the fault suite: each node runs the built
/// `strait overlay`, with one pod made by the built `strait-cni` from the subnet file the agent writes.
final class OverlayNodes: @unchecked Sendable {
    let network: OverlayTestNetwork
    var underlay: TestNamespace { network.underlay }
    var nodes: [TestNamespace] { network.nodes }
    var pods: [TestNamespace] { network.pods }
    var directory: String { network.directory }
    var storeURL = ""
    private(set) var agentPIDs: [Int: pid_t] = [:]
    /// A lease TTL of 64 s renewed a minute before it ends: a renewal every 4 s, so renewals happen
    /// while the store elects a leader.
    let agentFlags = ["--cluster-cidr", "10.244.0.0/16", "--subnet-len", "24", "--ip-masq",
                      "--lease-ttl", "64", "--subnet-lease-renew-margin", "1"]
    let device = "strait.1"

    /// `namespaces`: 1 underlay, then `count` nodes, then `count` pods.
    init(_ namespaces: [TestNamespace], nodes count: Int) throws {
        network = try OverlayTestNetwork(namespaces, nodes: count, label: "fault")
    }

    func publicIP(_ node: Int) -> String { network.publicIP(node) }
    func subnetFile(_ node: Int) -> String { "\(network.nodeDirectory(node))/subnet.env" }
    func log(_ node: Int) -> String { network.log(node) }

    /// Starts `strait overlay` in the node's namespace, its output appended to its log.
    func startAgent(_ node: Int) throws {
        agentPIDs[node] = try network.start(
            [builtProduct("strait"), "overlay", "--store", storeURL, "--subnet-file", subnetFile(node)] + agentFlags,
            on: node)
    }

    /// SIGTERM to every agent, SIGKILL after 10 s; reaps them.
    func stopAgents() {
        for (_, pid) in agentPIDs { OverlayTestNetwork.stop(pid) }
        agentPIDs = [:]
    }

    /// The node's leased subnet ("10.244.7.0/24") from its subnet file.
    func subnet(_ node: Int) -> String? {
        OverlayTestNetwork.subnet(inSubnetFile: try? String(contentsOfFile: subnetFile(node), encoding: .utf8))
    }

    /// The VTEP MAC of the node's VXLAN device.
    func vtepMAC(_ node: Int) throws -> String? { try network.vtepMAC(node, device: device) }

    /// Makes the node's pod with strait-cni reading the node's subnet file; returns its address.
    func addPod(_ node: Int) throws -> String { try network.addPod(node, subnetFile: subnetFile(node))[0] }

    /// Whether `node` has the route, permanent neighbour and FDB entry for a peer's subnet.
    func programs(_ node: Int, subnet: String, mac: String, publicIP: String) throws -> Bool {
        try network.peerEntries(on: node, device: device, subnet: subnet, mac: mac, publicIP: publicIP).all
    }

    func removeDirectory() { network.removeDirectory() }
}

import Foundation
import StraitTestSupport

/// The overlay suites' nodes on `OverlayTestNetwork`: each node runs the built `strait overlay`, with
/// one pod made by the built `strait-cni`.
final class OverlayCluster: @unchecked Sendable {
    let network: OverlayTestNetwork
    var underlay: TestNamespace { network.underlay }
    var nodes: [TestNamespace] { network.nodes }
    var pods: [TestNamespace] { network.pods }
    var directory: String { network.directory }
    /// The `--store` every agent gets.
    var storeURL: String
    var agentPIDs: [Int: pid_t] = [:]
    var extraFlags: [String] = ["--cluster-cidr", "10.244.0.0/16", "--subnet-len", "24", "--ip-masq"]
    /// The subnet file's path inside a node's directory ("flannel/subnet.env" for flannel's names).
    var subnetFileName = "subnet.env"
    /// The VXLAN device the agents own ("flannel.1" on flannel's network).
    var device = "strait.1"

    /// `namespaces`: 1 underlay, then `count` nodes, then `count` pods. `dualStack` also gives the
    /// bridge fd00:100::fe/64 and each node fd00:100::N/64 on its eth0.
    init(_ namespaces: [TestNamespace], nodes count: Int, storeURL: String? = nil, dualStack: Bool = false) throws {
        network = try OverlayTestNetwork(namespaces, nodes: count, label: "overlay", dualStack: dualStack)
        self.storeURL = storeURL ?? "\(network.directory)/store.db"
    }

    func publicIP(_ node: Int) -> String { network.publicIP(node) }
    func publicIPv6(_ node: Int) -> String { network.publicIPv6(node) }
    func nodeDirectory(_ node: Int) -> String { network.nodeDirectory(node) }
    func subnetFile(_ node: Int) -> String { "\(nodeDirectory(node))/\(subnetFileName)" }
    func logFile(_ node: Int) -> String { network.logFile(node) }
    func log(_ node: Int) -> String { network.log(node) }

    /// The agent's command line (no --iface or --public-ip: the defaults find eth0 and its address).
    func agentArguments(_ node: Int, _ flags: [String]? = nil) -> [String] {
        [builtProduct("strait"), "overlay", "--store", storeURL, "--subnet-file", subnetFile(node)] + (flags ?? extraFlags)
    }

    /// Starts `strait overlay` in the node's namespace, its output appended to its log.
    func startAgent(_ node: Int, flags: [String]? = nil) throws {
        agentPIDs[node] = try network.start(agentArguments(node, flags), on: node)
    }

    /// Runs the agent to its end (for configs it must refuse) and returns its exit status and log.
    func runAgentToExit(_ node: Int, flags: [String]? = nil) throws -> CommandOutput {
        try Command.output(["ip", "netns", "exec", nodes[node].name] + agentArguments(node, flags))
    }

    /// SIGTERM, then waits for the agent to exit; true when it exited within 10 s.
    @discardableResult
    func stopAgent(_ node: Int) -> Bool {
        guard let pid = agentPIDs.removeValue(forKey: node) else { return true }
        return OverlayTestNetwork.stop(pid)
    }

    func stopAll() {
        for node in agentPIDs.keys { stopAgent(node) }
    }

    /// The node's leased subnet ("10.244.7.0/24") once its subnet file is written.
    func waitForSubnet(_ node: Int) throws -> String {
        try waitUntil("node \(node) writes \(subnetFile(node))") { self.subnet(node) }
    }

    func subnetFileText(_ node: Int) -> String? { try? String(contentsOfFile: subnetFile(node), encoding: .utf8) }

    func subnet(_ node: Int) -> String? { OverlayTestNetwork.subnet(inSubnetFile: subnetFileText(node)) }

    /// The VTEP MAC of the node's VXLAN device.
    func vtepMAC(_ node: Int) throws -> String {
        guard let mac = try network.vtepMAC(node, device: device) else {
            throw CommandFailure(arguments: ["ip", "link", "show", device], output: nil, reason: "no \(device) on node \(node)")
        }
        return mac
    }

    /// Makes the node's pod with strait-cni reading the node's subnet file; returns the pod's address.
    func addPod(_ node: Int) throws -> String {
        let addresses = try network.addPod(node, subnetFile: subnetFile(node))
        podAddresses[node] = addresses
        return addresses[0]
    }

    /// Every address the node's pod got (IPv4 first, then IPv6 on a dual-stack network).
    var podAddresses: [Int: [String]] = [:]

    typealias PeerEntries = OverlayPeerEntries

    func entries(on node: Int, subnet: String, mac: String, publicIP: String) throws -> PeerEntries {
        try network.peerEntries(on: node, device: device, subnet: subnet, mac: mac, publicIP: publicIP)
    }

    func removeDirectory() { network.removeDirectory() }
}

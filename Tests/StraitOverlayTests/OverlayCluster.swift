import Foundation
import StraitTestSupport

/// The test topology: an underlay namespace holding bridge `br0` (192.168.100.254/24), and per
/// node a namespace joined to it by a veth (`eth0`, 192.168.100.N/24, default route via the
/// bridge) running the built `strait overlay`, with one pod made by the built `strait-cni`.
final class OverlayCluster: @unchecked Sendable {
    let underlay: TestNamespace
    let nodes: [TestNamespace]
    let pods: [TestNamespace]
    let directory: String
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
        underlay = namespaces[0]
        nodes = Array(namespaces[1...count])
        pods = Array(namespaces[(count + 1)...(2 * count)])
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("strait-overlay-\(UUID())").path
        self.storeURL = storeURL ?? "\(directory)/store.db"
        try underlay.run(["ip", "link", "add", "br0", "type", "bridge"])
        try underlay.run(["ip", "addr", "add", "192.168.100.254/24", "dev", "br0"])
        try underlay.run(["ip", "link", "set", "br0", "up"])
        for (index, node) in nodes.enumerated() {
            try FileManager.default.createDirectory(atPath: nodeDirectory(index), withIntermediateDirectories: true)
            try node.connect(to: underlay, localName: "eth0", remoteName: "veth\(index)")
            try underlay.run(["ip", "link", "set", "veth\(index)", "master", "br0"])
            try node.run(["ip", "addr", "add", "\(publicIP(index))/24", "dev", "eth0"])
            try node.run(["ip", "route", "add", "default", "via", "192.168.100.254"])
            if dualStack { try node.run(["ip", "addr", "add", "\(publicIPv6(index))/64", "dev", "eth0", "nodad"]) }
        }
        if dualStack { try underlay.run(["ip", "addr", "add", "fd00:100::fe/64", "dev", "br0", "nodad"]) }
    }

    func publicIP(_ node: Int) -> String { "192.168.100.\(node + 1)" }
    func publicIPv6(_ node: Int) -> String { "fd00:100::\(node + 1)" }
    func nodeDirectory(_ node: Int) -> String { "\(directory)/node\(node)" }
    func subnetFile(_ node: Int) -> String { "\(nodeDirectory(node))/\(subnetFileName)" }
    func logFile(_ node: Int) -> String { "\(nodeDirectory(node))/overlay.log" }
    func log(_ node: Int) -> String { (try? String(contentsOfFile: logFile(node), encoding: .utf8)) ?? "" }

    /// The agent's command line (no --iface or --public-ip: the defaults find eth0 and its address).
    func agentArguments(_ node: Int, _ flags: [String]? = nil) -> [String] {
        [builtProduct("strait"), "overlay", "--store", storeURL, "--subnet-file", subnetFile(node)] + (flags ?? extraFlags)
    }

    /// Starts `strait overlay` in the node's namespace, its output appended to its log.
    func startAgent(_ node: Int, flags: [String]? = nil) throws {
        let command = agentArguments(node, flags).joined(separator: " ")
        agentPIDs[node] = try Command.start(
            ["ip", "netns", "exec", nodes[node].name, "sh", "-c", "exec \(command) >>\(logFile(node)) 2>&1"], stdin: "")
    }

    /// Runs the agent to its end (for configs it must refuse) and returns its exit status and log.
    func runAgentToExit(_ node: Int, flags: [String]? = nil) throws -> CommandOutput {
        try Command.output(["ip", "netns", "exec", nodes[node].name] + agentArguments(node, flags))
    }

    /// SIGTERM, then waits for the agent to exit; true when it exited within 10 s.
    @discardableResult
    func stopAgent(_ node: Int) -> Bool {
        guard let pid = agentPIDs.removeValue(forKey: node) else { return true }
        kill(pid, SIGTERM)
        var status: Int32 = 0
        for _ in 0..<500 {
            if waitpid(pid, &status, WNOHANG) == pid { return true }
            usleep(20_000)
        }
        kill(pid, SIGKILL)
        waitpid(pid, &status, 0)
        return false
    }

    func stopAll() {
        for node in agentPIDs.keys { stopAgent(node) }
    }

    /// The node's leased subnet ("10.244.7.0/24") once its subnet file is written.
    func waitForSubnet(_ node: Int) throws -> String {
        try waitUntil("node \(node) writes \(subnetFile(node))") { self.subnet(node) }
    }

    func subnetFileText(_ node: Int) -> String? { try? String(contentsOfFile: subnetFile(node), encoding: .utf8) }

    func subnet(_ node: Int) -> String? {
        guard let line = subnetFileText(node)?.split(separator: "\n")
                .first(where: { $0.hasPrefix("STRAIT_SUBNET=") || $0.hasPrefix("FLANNEL_SUBNET=") }),
              let value = line.split(separator: "=").last else { return nil }
        let parts = value.split(separator: "/")
        var octets = parts[0].split(separator: ".")
        octets[3] = "0"
        return octets.joined(separator: ".") + "/" + parts[1]
    }

    /// The VTEP MAC of the node's VXLAN device.
    func vtepMAC(_ node: Int) throws -> String {
        let line = try nodes[node].run(["ip", "-o", "link", "show", device])
        let words = line.split(separator: " ")
        return String(words[words.firstIndex(of: "link/ether")! + 1])
    }

    /// Makes the node's pod with strait-cni reading the node's subnet file; returns the pod's address.
    func addPod(_ node: Int) throws -> String {
        let config = """
            {"cniVersion":"1.1.0","name":"strait","type":"strait-cni","subnetFile":"\(subnetFile(node))",\
            "dataDir":"\(nodeDirectory(node))/cni"}
            """
        let env = [
            "CNI_COMMAND=ADD", "CNI_CONTAINERID=pod\(node)", "CNI_IFNAME=eth0", "CNI_NETNS=\(pods[node].path)",
            "CNI_PATH=/opt/cni/bin", "PATH=/usr/sbin:/usr/bin:/sbin:/bin",
        ]
        let output = try Command.output(["ip", "netns", "exec", nodes[node].name, "env", "-i"] + env
            + [builtProduct("strait-cni")], stdin: config)
        guard output.succeeded, let json = try JSONSerialization.jsonObject(with: Data(output.stdout.utf8)) as? [String: Any],
              let address = (json["ips"] as? [[String: Any]])?.first?["address"] as? String else {
            throw CommandFailure(arguments: ["strait-cni", "ADD"], output: output, reason: "pod on node \(node) not made")
        }
        podAddresses[node] = ((json["ips"] as? [[String: Any]]) ?? []).compactMap { $0["address"] as? String }
            .map { String($0.prefix { $0 != "/" }) }
        return String(address.prefix { $0 != "/" })
    }

    /// Every address the node's pod got (IPv4 first, then IPv6 on a dual-stack network).
    var podAddresses: [Int: [String]] = [:]

    /// The node's overlay entries for one peer: route, permanent neighbour, FDB.
    struct PeerEntries: Equatable, CustomStringConvertible {
        var route: Bool
        var neighbour: Bool
        var fdb: Bool
        var all: Bool { route && neighbour && fdb }
        var none: Bool { !route && !neighbour && !fdb }
        var description: String { "route \(route), neighbour \(neighbour), fdb \(fdb)" }
    }

    func entries(on node: Int, subnet: String, mac: String, publicIP: String) throws -> PeerEntries {
        let vtep = String(subnet.prefix { $0 != "/" })
        let routes = try nodes[node].output(["ip", "route", "show", "dev", device]).stdout
        let neighbours = try nodes[node].output(["ip", "neigh", "show", "dev", device]).stdout
        let fdb = try nodes[node].output(["bridge", "fdb", "show", "dev", device]).stdout
        return PeerEntries(
            route: routes.split(separator: "\n").contains { $0.hasPrefix("\(subnet) via \(vtep) ") && $0.contains("onlink") },
            neighbour: neighbours.split(separator: "\n").contains { $0.hasPrefix("\(vtep) lladdr \(mac) ") && $0.contains("PERMANENT") },
            fdb: fdb.split(separator: "\n").contains { $0.hasPrefix("\(mac) dst \(publicIP) ") })
    }

    func removeDirectory() { try? FileManager.default.removeItem(atPath: directory) }
}

/// Polls `probe` every 100 ms for up to `seconds`; throws naming `what` when it never answers.
@discardableResult
func waitUntil<T>(_ what: String, seconds: Double = 30, _ probe: () throws -> T?) throws -> T {
    let deadline = Date().addingTimeInterval(seconds)
    while true {
        if let value = try probe() { return value }
        if Date() > deadline { throw CommandFailure(arguments: [], output: nil, reason: "timed out waiting until \(what)") }
        usleep(100_000)
    }
}

func waitUntil(_ what: String, seconds: Double = 30, _ probe: () throws -> Bool) throws {
    try waitUntil(what, seconds: seconds) { try probe() ? true : nil }
}

func waitUntilAsync(_ what: String, seconds: Double = 30, _ probe: () async throws -> Bool) async throws {
    let deadline = Date().addingTimeInterval(seconds)
    while try await !probe() {
        if Date() > deadline { throw CommandFailure(arguments: [], output: nil, reason: "timed out waiting until \(what)") }
        try await Task.sleep(for: .milliseconds(100))
    }
}

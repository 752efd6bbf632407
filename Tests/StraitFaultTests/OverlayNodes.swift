import Foundation
import StraitTestSupport

/// The overlay topology of `Tests/StraitOverlayTests/OverlayCluster.swift`, for the fault suite:
/// an underlay namespace holding bridge `br0` (192.168.100.254/24, fixed MAC) and per node a
/// namespace on it (`eth0`, 192.168.100.N/24) running the built `strait overlay`, with one pod made
/// by the built `strait-cni` from the subnet file the agent writes.
final class OverlayNodes: @unchecked Sendable {
    let underlay: TestNamespace
    let nodes: [TestNamespace]
    let pods: [TestNamespace]
    let directory: String
    var storeURL = ""
    private(set) var agentPIDs: [Int: pid_t] = [:]
    /// A lease TTL of 64 s renewed a minute before it ends: a renewal every 4 s, so renewals happen
    /// while the store elects a leader.
    let agentFlags = ["--cluster-cidr", "10.244.0.0/16", "--subnet-len", "24", "--ip-masq",
                      "--lease-ttl", "64", "--subnet-lease-renew-margin", "1"]
    let device = "strait.1"

    /// `namespaces`: 1 underlay, then `count` nodes, then `count` pods.
    init(_ namespaces: [TestNamespace], nodes count: Int) throws {
        underlay = namespaces[0]
        nodes = Array(namespaces[1...count])
        pods = Array(namespaces[(count + 1)...(2 * count)])
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("strait-fault-\(UUID())").path
        try underlay.run(["ip", "link", "add", "br0", "address", "02:00:00:00:64:fe", "type", "bridge"])
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
    func logFile(_ node: Int) -> String { "\(nodeDirectory(node))/overlay.log" }
    func log(_ node: Int) -> String { (try? String(contentsOfFile: logFile(node), encoding: .utf8)) ?? "" }

    /// Starts `strait overlay` in the node's namespace, its output appended to its log.
    func startAgent(_ node: Int) throws {
        let command = ([builtProduct("strait"), "overlay", "--store", storeURL, "--subnet-file", subnetFile(node)]
            + agentFlags).joined(separator: " ")
        agentPIDs[node] = try Command.start(
            ["ip", "netns", "exec", nodes[node].name, "sh", "-c", "exec \(command) >>\(logFile(node)) 2>&1"],
            stdin: "")
    }

    /// SIGTERM to every agent, SIGKILL after 10 s; reaps them.
    func stopAgents() {
        for (_, pid) in agentPIDs { kill(pid, SIGTERM) }
        for (_, pid) in agentPIDs {
            var status: Int32 = 0
            var exited = false
            for _ in 0..<500 where !exited {
                exited = waitpid(pid, &status, WNOHANG) == pid
                if !exited { usleep(20_000) }
            }
            if !exited {
                kill(pid, SIGKILL)
                waitpid(pid, &status, 0)
            }
        }
        agentPIDs = [:]
    }

    /// The node's leased subnet ("10.244.7.0/24") from its subnet file.
    func subnet(_ node: Int) -> String? {
        guard let text = try? String(contentsOfFile: subnetFile(node), encoding: .utf8),
              let line = text.split(separator: "\n").first(where: { $0.hasPrefix("STRAIT_SUBNET=") }),
              let value = line.split(separator: "=").last else { return nil }
        let parts = value.split(separator: "/")
        var octets = parts[0].split(separator: ".")
        octets[3] = "0"
        return octets.joined(separator: ".") + "/" + parts[1]
    }

    /// The VTEP MAC of the node's VXLAN device.
    func vtepMAC(_ node: Int) throws -> String? {
        let output = try nodes[node].output(["ip", "-o", "link", "show", device])
        guard output.succeeded else { return nil }
        let words = output.stdout.split(separator: " ")
        return words.firstIndex(of: "link/ether").map { String(words[$0 + 1]) }
    }

    /// Makes the node's pod with strait-cni reading the node's subnet file; returns its address.
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
        guard output.succeeded,
              let json = try JSONSerialization.jsonObject(with: Data(output.stdout.utf8)) as? [String: Any],
              let address = (json["ips"] as? [[String: Any]])?.first?["address"] as? String else {
            throw CommandFailure(arguments: ["strait-cni", "ADD"], output: output,
                                 reason: "pod on node \(node) not made: \(output.stdout)")
        }
        return String(address.prefix { $0 != "/" })
    }

    /// Whether `node` has the route, permanent neighbour and FDB entry for a peer's subnet.
    func programs(_ node: Int, subnet: String, mac: String, publicIP: String) throws -> Bool {
        let vtep = String(subnet.prefix { $0 != "/" })
        let routes = try nodes[node].output(["ip", "route", "show", "dev", device]).stdout
        let neighbours = try nodes[node].output(["ip", "neigh", "show", "dev", device]).stdout
        let fdb = try nodes[node].output(["bridge", "fdb", "show", "dev", device]).stdout
        let route = routes.split(separator: "\n").contains {
            $0.hasPrefix("\(subnet) via \(vtep) ") && $0.contains("onlink")
        }
        let neighbour = neighbours.split(separator: "\n").contains {
            $0.hasPrefix("\(vtep) lladdr \(mac) ") && $0.contains("PERMANENT")
        }
        return route && neighbour && fdb.split(separator: "\n").contains { $0.hasPrefix("\(mac) dst \(publicIP) ") }
    }

    func removeDirectory() { try? FileManager.default.removeItem(atPath: directory) }
}

/// Polls `probe` every 100 ms for up to `seconds`; throws naming `what` when it never holds.
func waitUntil(_ what: String, seconds: Double = 30, _ probe: () throws -> Bool) throws {
    let deadline = Date().addingTimeInterval(seconds)
    while try !probe() {
        if Date() > deadline {
            throw CommandFailure(arguments: [], output: nil, reason: "timed out waiting until \(what)")
        }
        usleep(100_000)
    }
}

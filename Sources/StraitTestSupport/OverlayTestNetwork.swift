import Foundation

/// The closed network the overlay's tests run nodes on (overlay, fault and Kubernetes-subnet suites):
/// an underlay namespace holding bridge `br0` (192.168.100.254/24, and fd00:100::fe/64 when dual
/// stack), and per node a namespace joined to it by a veth (`eth0`, 192.168.100.N/24, default route
/// via the bridge) with a directory of its own, and a namespace for the node's pod.
///
/// The bridge carries an address, so it has a fixed MAC: a bridge otherwise takes its lowest port's
/// MAC as ports join, and the nodes' ARP entries for 192.168.100.254 silently go stale.
public final class OverlayTestNetwork: @unchecked Sendable {
    public let underlay: TestNamespace
    public let nodes: [TestNamespace]
    public let pods: [TestNamespace]
    /// Holds a directory per node (`node0`, `node1`, …) and whatever else a test keeps there.
    public let directory: String
    public static let bridgeMAC = "02:00:00:00:64:fe"

    /// `namespaces`: 1 underlay, then `count` nodes, then `count` pods. The directory is made under the
    /// temporary directory, named from `label`; `dualStack` also gives each node fd00:100::N/64.
    public init(_ namespaces: [TestNamespace], nodes count: Int, label: String, dualStack: Bool = false) throws {
        underlay = namespaces[0]
        nodes = Array(namespaces[1...count])
        pods = Array(namespaces[(count + 1)...(2 * count)])
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("strait-\(label)-\(UUID())").path
        try underlay.run(["ip", "link", "add", "br0", "address", Self.bridgeMAC, "type", "bridge"])
        try underlay.run(["ip", "addr", "add", "192.168.100.254/24", "dev", "br0"])
        if dualStack { try underlay.run(["ip", "addr", "add", "fd00:100::fe/64", "dev", "br0", "nodad"]) }
        try underlay.run(["ip", "link", "set", "br0", "up"])
        for (index, node) in nodes.enumerated() {
            try FileManager.default.createDirectory(atPath: nodeDirectory(index), withIntermediateDirectories: true)
            try node.connect(to: underlay, localName: "eth0", remoteName: "veth\(index)")
            try underlay.run(["ip", "link", "set", "veth\(index)", "master", "br0"])
            try node.run(["ip", "addr", "add", "\(publicIP(index))/24", "dev", "eth0"])
            try node.run(["ip", "route", "add", "default", "via", "192.168.100.254"])
            if dualStack { try node.run(["ip", "addr", "add", "\(publicIPv6(index))/64", "dev", "eth0", "nodad"]) }
        }
    }

    public func publicIP(_ node: Int) -> String { "192.168.100.\(node + 1)" }
    public func publicIPv6(_ node: Int) -> String { "fd00:100::\(node + 1)" }
    public func nodeDirectory(_ node: Int) -> String { "\(directory)/node\(node)" }
    public func logFile(_ node: Int) -> String { "\(nodeDirectory(node))/overlay.log" }
    public func log(_ node: Int) -> String { (try? String(contentsOfFile: logFile(node), encoding: .utf8)) ?? "" }
    public func removeDirectory() { try? FileManager.default.removeItem(atPath: directory) }

    /// Starts `arguments` in the node's namespace, its output appended to the node's log.
    public func start(_ arguments: [String], on node: Int) throws -> pid_t {
        let command = arguments.joined(separator: " ")
        return try Command.start(
            ["ip", "netns", "exec", nodes[node].name, "sh", "-c", "exec \(command) >>\(logFile(node)) 2>&1"], stdin: "")
    }

    /// SIGTERM, then waits for `pid` to exit; SIGKILL after 10 s. True when it exited in time.
    @discardableResult
    public static func stop(_ pid: pid_t) -> Bool {
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

    /// The MAC of the node's VXLAN device, nil while it does not exist.
    public func vtepMAC(_ node: Int, device: String) throws -> String? {
        let output = try nodes[node].output(["ip", "-o", "link", "show", device])
        guard output.succeeded else { return nil }
        let words = output.stdout.split(separator: " ")
        return words.firstIndex(of: "link/ether").map { String(words[$0 + 1]) }
    }

    /// The leased subnet ("10.244.7.0/24") a subnet file names (Strait's or flannel's names), if any.
    public static func subnet(inSubnetFile text: String?) -> String? {
        guard let line = text?.split(separator: "\n")
                .first(where: { $0.hasPrefix("STRAIT_SUBNET=") || $0.hasPrefix("FLANNEL_SUBNET=") }),
              let value = line.split(separator: "=").last else { return nil }
        let parts = value.split(separator: "/")
        var octets = parts[0].split(separator: ".")
        octets[3] = "0"
        return octets.joined(separator: ".") + "/" + parts[1]
    }

    /// Makes the node's pod with the built `strait-cni` reading `subnetFile`; returns every address the
    /// pod got (IPv4 first, then IPv6 on a dual-stack network).
    public func addPod(_ node: Int, subnetFile: String) throws -> [String] {
        let config = """
            {"cniVersion":"1.1.0","name":"strait","type":"strait-cni","subnetFile":"\(subnetFile)",\
            "dataDir":"\(nodeDirectory(node))/cni"}
            """
        let env = [
            "CNI_COMMAND=ADD", "CNI_CONTAINERID=pod\(node)", "CNI_IFNAME=eth0", "CNI_NETNS=\(pods[node].path)",
            "CNI_PATH=/opt/cni/bin", "PATH=/usr/sbin:/usr/bin:/sbin:/bin",
        ]
        let output = try Command.output(["ip", "netns", "exec", nodes[node].name, "env", "-i"] + env
            + [builtProduct("strait-cni")], stdin: config)
        let json = output.succeeded ? try? JSONSerialization.jsonObject(with: Data(output.stdout.utf8)) : nil
        let addresses = ((json as? [String: Any])?["ips"] as? [[String: Any]] ?? [])
            .compactMap { $0["address"] as? String }.map { String($0.prefix { $0 != "/" }) }
        guard !addresses.isEmpty else {
            throw CommandFailure(arguments: ["strait-cni", "ADD"], output: output,
                                 reason: "pod on node \(node) not made: \(output.stdout)")
        }
        return addresses
    }

    /// What `node` holds for one peer on `device`: its route (onlink via the peer's VTEP address), its
    /// permanent neighbour entry and its FDB entry.
    public func peerEntries(on node: Int, device: String, subnet: String, mac: String,
                            publicIP: String) throws -> OverlayPeerEntries {
        let vtep = String(subnet.prefix { $0 != "/" })
        let routes = try nodes[node].output(["ip", "route", "show", "dev", device]).stdout
        let neighbours = try nodes[node].output(["ip", "neigh", "show", "dev", device]).stdout
        let fdb = try nodes[node].output(["bridge", "fdb", "show", "dev", device]).stdout
        return OverlayPeerEntries(
            route: routes.split(separator: "\n").contains { $0.hasPrefix("\(subnet) via \(vtep) ") && $0.contains("onlink") },
            neighbour: neighbours.split(separator: "\n").contains {
                $0.hasPrefix("\(vtep) lladdr \(mac) ") && $0.contains("PERMANENT")
            },
            fdb: fdb.split(separator: "\n").contains { $0.hasPrefix("\(mac) dst \(publicIP) ") })
    }
}

/// A node's overlay entries for one peer: route, permanent neighbour, FDB.
public struct OverlayPeerEntries: Equatable, CustomStringConvertible, Sendable {
    public var route: Bool
    public var neighbour: Bool
    public var fdb: Bool
    public var all: Bool { route && neighbour && fdb }
    public var none: Bool { !route && !neighbour && !fdb }
    public var description: String { "route \(route), neighbour \(neighbour), fdb \(fdb)" }

    public init(route: Bool, neighbour: Bool, fdb: Bool) {
        self.route = route
        self.neighbour = neighbour
        self.fdb = fdb
    }
}

/// Polls `probe` every 100 ms for up to `seconds`; throws naming `what` when it never answers.
@discardableResult
public func waitUntil<T>(_ what: String, seconds: Double = 30, _ probe: () throws -> T?) throws -> T {
    let deadline = Date().addingTimeInterval(seconds)
    while true {
        if let value = try probe() { return value }
        if Date() > deadline { throw CommandFailure(arguments: [], output: nil, reason: "timed out waiting until \(what)") }
        usleep(100_000)
    }
}

/// Polls `probe` every 100 ms for up to `seconds`; throws naming `what` when it never holds.
public func waitUntil(_ what: String, seconds: Double = 30, _ probe: () throws -> Bool) throws {
    try waitUntil(what, seconds: seconds) { try probe() ? true : nil }
}

/// `waitUntil` for an asynchronous probe.
public func waitUntilAsync(_ what: String, seconds: Double = 30, _ probe: () async throws -> Bool) async throws {
    let deadline = Date().addingTimeInterval(seconds)
    while try await !probe() {
        if Date() > deadline { throw CommandFailure(arguments: [], output: nil, reason: "timed out waiting until \(what)") }
        try await Task.sleep(for: .milliseconds(100))
    }
}

import Foundation
import StraitCNI
import StraitTestSupport

/// Runs the built `strait-cni` as a runtime would — environment and stdin in, JSON out — inside a
/// test "node" namespace, with its own lease directory. Pods are other test namespaces.
struct CNIHarness {
    let node: TestNamespace
    let dataDir: String
    var subnet = "10.250.1.0/24"
    var network = "strait-test"
    var cniVersion = "1.1.0"
    var bridge = "strait0"

    init(node: TestNamespace) {
        self.node = node
        dataDir = FileManager.default.temporaryDirectory.appendingPathComponent("strait-cni-\(UUID())").path
    }

    /// The network configuration as a runtime passes it, with `extra` keys merged in.
    func config(_ extra: [String: Any] = [:]) -> String {
        var object: [String: Any] = [
            "cniVersion": cniVersion, "name": network, "type": "strait-cni",
            "subnet": subnet, "dataDir": dataDir, "bridge": bridge, "mtu": 1400,
        ]
        for (key, value) in extra { object[key] = value }
        let data = try! JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
        return String(decoding: data, as: UTF8.self)
    }

    struct Reply {
        let status: Int32
        let stdout: String
        let stderr: String
        var json: [String: Any] {
            (try? JSONSerialization.jsonObject(with: Data(stdout.utf8))) as? [String: Any] ?? [:]
        }
        var code: Int? { json["code"] as? Int }
    }

    /// Runs one command; `environment` entries override the defaults (a nil value removes one).
    func invoke(_ command: String, containerID: String = "c1", pod: TestNamespace? = nil, ifname: String = "eth0",
                args: String? = nil, config: String? = nil, environment: [String: String?] = [:]) throws -> Reply {
        var env: [String: String] = [
            "CNI_COMMAND": command, "CNI_CONTAINERID": containerID, "CNI_IFNAME": ifname, "CNI_PATH": "/opt/cni/bin",
            "PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/sbin:/usr/bin:/sbin:/bin",
        ]
        if let pod { env["CNI_NETNS"] = pod.path }
        if let args { env["CNI_ARGS"] = args }
        for (key, value) in environment { env[key] = value }
        let arguments = ["ip", "netns", "exec", node.name, "env", "-i"] + env.sorted { $0.key < $1.key }.map { "\($0)=\($1)" }
            + [builtProduct("strait-cni")]
        let output = try Command.output(arguments, stdin: config ?? self.config())
        return Reply(status: output.status, stdout: output.stdout, stderr: output.stderr)
    }

    /// ADD that must succeed; returns the pod's address without prefix.
    @discardableResult
    func add(_ containerID: String, pod: TestNamespace, ifname: String = "eth0", config: String? = nil) throws -> String {
        let reply = try invoke("ADD", containerID: containerID, pod: pod, ifname: ifname, config: config)
        guard reply.status == 0, let ips = reply.json["ips"] as? [[String: Any]], let address = ips.first?["address"] as? String else {
            throw CommandFailure(arguments: ["strait-cni", "ADD"], output: nil, reason: "failed: \(reply.stdout) \(reply.stderr)")
        }
        return String(address.prefix { $0 != "/" })
    }

    /// The lease book's addresses by (containerID/ifname), as the plugin reads its book (the slot
    /// with the highest generation that is whole).
    func leases() throws -> [String: String] {
        var result: [String: String] = [:]
        for lease in try IPAM.inspect(dataDir: dataDir, network: network) {
            result["\(lease.containerID)/\(lease.ifname)"] = lease.address.description
        }
        return result
    }

    /// Every file under the data directory with its content: "nothing changed on disk" compares these.
    func diskState() -> [String: Data] {
        var state: [String: Data] = [:]
        let enumerator = FileManager.default.enumerator(atPath: dataDir)
        while let file = enumerator?.nextObject() as? String {
            state[file] = FileManager.default.contents(atPath: "\(dataDir)/\(file)")
        }
        return state
    }

    /// The node's links (name, flags, MTU, qdisc), global addresses, routes and nftables ruleset:
    /// "nothing changed in the kernel" compares these. Carrier and operational state (`NO-CARRIER`,
    /// `LOWER_UP`, `state …`, a route's `linkdown`), IPv6 link-local addresses and the link-local and
    /// multicast routes that come with them are left out: the kernel sets them by itself some time
    /// after a link comes up (later still on a loaded machine), whether or not the plugin waited.
    func kernelState() throws -> String {
        let links = try node.run(["ip", "-o", "link", "show"]).split(separator: "\n").map { line in
            line.split(separator: " ").filter { !$0.hasPrefix("state") }.prefix(7).map { field in
                field.hasPrefix("<") ? field.dropFirst().dropLast().split(separator: ",")
                    .filter { $0 != "NO-CARRIER" && $0 != "LOWER_UP" }.joined(separator: ",")
                    : String(field)
            }.joined(separator: " ")
        }
        let routes = try node.run(["ip", "route", "show", "table", "all"]).split(separator: "\n")
            .filter { !$0.contains("fe80:") && !$0.contains("ff00::/8") }
            .map { $0.replacingOccurrences(of: " linkdown", with: "") }
        return links.joined(separator: "\n") + (try node.run(["ip", "-o", "addr", "show", "scope", "global"]))
            + routes.joined(separator: "\n") + (try node.run(["nft", "list", "ruleset"]))
    }

    /// The host-side veths strait-cni made.
    func hostVeths() throws -> [String] {
        try node.run(["ip", "-o", "link", "show"]).split(separator: "\n").compactMap { line in
            let name = line.split(separator: ":")[1].trimmingCharacters(in: .whitespaces).split(separator: "@")[0]
            return name.hasPrefix("st") && name.count == 14 ? String(name) : nil
        }
    }

    func removeDataDir() { try? FileManager.default.removeItem(atPath: dataDir) }
}

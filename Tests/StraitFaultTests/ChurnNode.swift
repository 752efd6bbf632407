import Foundation
import StraitCNI
import StraitSystem
import StraitTestSupport

/// A test "node" namespace on which pods (each its own namespace) are added and deleted through the
/// built `strait-cni`, called as a runtime calls it: environment and stdin in, exit status out. A
/// call can be SIGKILLed a given time after it starts, as a runtime's timeout or an OOM kill would.
final class ChurnNode: @unchecked Sendable {
    let node: TestNamespace
    let dataDir: String
    let network = "churn"
    /// A /20: room for every live pod plus what killed calls leak until GC.
    let subnet = "10.250.0.0/20"
    let bridge = "strait0"

    init(node: TestNamespace) {
        self.node = node
        dataDir = FileManager.default.temporaryDirectory.appendingPathComponent("strait-churn-\(UUID())").path
    }

    /// One pod: its namespace (named like every test namespace, so a killed test's leftovers are
    /// swept) and, for some, a hostPort.
    struct Pod: Hashable, Sendable {
        var index: Int
        var hostPort: Int?
        var containerID: String { "churn-\(index)" }
        var namespaceName: String { "\(testNamespacePrefix)-\(getpid())-pod\(index)" }
        var key: AttachmentKey { AttachmentKey(containerID: containerID, ifname: "eth0") }
        var hostVeth: String { hostVethName(for: key) }
        /// The id in the names of the pod's nftables chains (`hp-<id>`, `masq-<id>`).
        var chainID: String { String(hostVeth.dropFirst(2)) }
    }

    /// The network configuration the runtime passes: masqueraded pods, the pod's hostPort if any,
    /// and for GC the attachments still valid.
    func config(for pod: Pod? = nil, validAttachments: [Pod]? = nil) -> String {
        var object: [String: Any] = [
            "cniVersion": "1.1.0", "name": network, "type": "strait-cni", "subnet": subnet, "dataDir": dataDir,
            "bridge": bridge, "ipMasq": true,
        ]
        if let port = pod?.hostPort {
            object["runtimeConfig"] = ["portMappings": [["hostPort": port, "containerPort": 80, "protocol": "tcp"]]]
        }
        if let validAttachments {
            object["cni.dev/valid-attachments"] = validAttachments.map {
                ["containerID": $0.containerID, "ifname": "eth0"]
            }
        }
        let data = try! JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
        return String(decoding: data, as: UTF8.self)
    }

    private func arguments(_ command: String, _ pod: Pod?) -> [String] {
        var env = ["CNI_COMMAND=\(command)", "CNI_IFNAME=eth0", "CNI_PATH=/opt/cni/bin",
                   "PATH=/usr/sbin:/usr/bin:/sbin:/bin"]
        if let pod { env += ["CNI_CONTAINERID=\(pod.containerID)", "CNI_NETNS=/run/netns/\(pod.namespaceName)"] }
        // `ip netns exec` and `env` both exec: the PID started is strait-cni's own.
        return ["ip", "netns", "exec", node.name, "env", "-i"] + env + [builtProduct("strait-cni")]
    }

    /// How one call ended.
    enum Outcome: Equatable {
        case succeeded
        /// Exited non-zero on its own; the plugin's error (stdout) when it was captured.
        case failed(status: Int32, error: String)
        /// Ended by our SIGKILL before it finished.
        case killed
    }

    /// Runs ADD, DEL or GC for `pod`; with `killAfter`, sends SIGKILL that long after the start.
    func call(_ command: String, pod: Pod?, config: String, killAfter: Duration? = nil) throws -> Outcome {
        guard let killAfter else {
            let output = try Command.output(arguments(command, pod), stdin: config)
            return output.succeeded ? .succeeded : .failed(status: output.status, error: output.stdout + output.stderr)
        }
        let pid = try Command.start(arguments(command, pod), stdin: config)
        let (seconds, attoseconds) = killAfter.components
        usleep(UInt32(seconds * 1_000_000 + attoseconds / 1_000_000_000_000))
        kill(pid, SIGKILL)  // not reaped yet, so the PID is still this child's
        let status = ChildProcess.waitForExit(pid)
        switch status {
        case 0: return .succeeded
        case 128 + SIGKILL: return .killed
        default: return .failed(status: status, error: "(output not captured: a call planned to be killed)")
        }
    }

    func addNamespace(_ pod: Pod) throws { try Command.run(["ip", "netns", "add", pod.namespaceName]) }

    func deleteNamespace(_ pod: Pod) {
        _ = try? Command.output(["ip", "netns", "delete", pod.namespaceName])
    }

    /// Attachments that hold a lease, by container ID, with the address.
    func leases() throws -> [String: String] {
        var result: [String: String] = [:]
        for lease in try IPAM.inspect(dataDir: dataDir, network: network) {
            result[lease.containerID] = lease.address.description
        }
        return result
    }

    /// Every leased address, duplicates kept (two leases of one address would be a defect).
    func leasedAddresses() throws -> [String] {
        try IPAM.inspect(dataDir: dataDir, network: network).map(\.address.description)
    }

    /// The host ends of pod veths (strait-cni's `st` + 12 hex digits) on the node.
    func hostVeths() throws -> Set<String> {
        Set(try node.run(["ip", "-o", "link", "show", "type", "veth"]).split(separator: "\n").compactMap { line in
            let name = line.split(separator: ":")[1].trimmingCharacters(in: .whitespaces).split(separator: "@")[0]
            return name.hasPrefix("st") && name.count == 14 ? String(name) : nil
        })
    }

    /// The attachment ids named by hostPort chains (`hp-<id>`) and masquerade chains (`masq-<id>`),
    /// as chains and as map verdicts, in the node's nftables ruleset.
    func natChains() throws -> (hostPort: Set<String>, masquerade: Set<String>) {
        let ruleset = try node.run(["nft", "list", "ruleset"])
        func ids(_ prefix: String) -> Set<String> {
            var found: Set<String> = []
            var rest = Substring(ruleset)
            while let range = rest.range(of: prefix) {
                let id = rest[range.upperBound...].prefix(12)
                if id.count == 12, id.allSatisfy(\.isHexDigit) { found.insert(String(id)) }
                rest = rest[range.upperBound...]
            }
            return found
        }
        return (ids(" hp-"), ids(" masq-"))
    }

    /// The node as a whole: link names and masters, global addresses, routes and the nftables
    /// ruleset. Carrier state and link-local routes are left out (the kernel sets them later: a bridge
    /// whose last port went is marked NO-CARRIER, and its routes linkdown, some time after).
    func kernelState() throws -> String {
        let links = try node.run(["ip", "-o", "link", "show"]).split(separator: "\n").map { line in
            line.replacingOccurrences(of: "NO-CARRIER,", with: "").split(separator: " ")
                .filter { !$0.hasPrefix("state") }.prefix(7).joined(separator: " ")
        }
        let routes = try node.run(["ip", "route", "show", "table", "all"]).split(separator: "\n")
            .filter { !$0.contains("fe80:") && !$0.contains("ff00::/8") }
            .map { $0.replacingOccurrences(of: " linkdown", with: "") }
        return links.joined(separator: "\n") + "\n" + (try node.run(["ip", "-o", "addr", "show", "scope", "global"]))
            + routes.joined(separator: "\n") + "\n" + (try node.run(["nft", "list", "ruleset"]))
    }

    func removeDataDir() { try? FileManager.default.removeItem(atPath: dataDir) }
}

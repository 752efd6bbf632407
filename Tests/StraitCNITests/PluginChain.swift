import Foundation
import StraitTestSupport

/// Runs a conflist as libcni does (`AddNetworkList`, `CheckNetworkList`, `DelNetworkList`): each
/// plugin gets its own object plus `cniVersion`, `name`, the `runtimeConfig` entries of the
/// capabilities it declares, and `prevResult` — none for the first ADD, the previous plugin's
/// result after that, the final ADD result for CHECK and DEL. DEL runs the list in reverse.
/// `strait-cni` is the built product; every other type is Debian's reference plugin.
///
/// The reference plugins get a PATH with `iptables` but no `ip6tables`: portmap 1.1.1's CHECK looks
/// for its chain in ip6tables whenever that tool exists, even for an IPv4-only pod, and fails
/// (containernetworking/plugins#819, fixed after 1.1.1); without ip6tables it checks IPv4 alone.
struct PluginChain {
    static let referencePlugins = "/usr/lib/cni"
    /// `iptables`, `iptables-save` and `iptables-restore`, linked from /usr/sbin.
    static let ipv4OnlyTools: String = {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("strait-cni-iptables-\(getpid())").path
        try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        for tool in ["iptables", "iptables-save", "iptables-restore"] {
            try? FileManager.default.createSymbolicLink(atPath: "\(directory)/\(tool)", withDestinationPath: "/usr/sbin/\(tool)")
        }
        return directory
    }()

    let node: TestNamespace
    let name: String
    let cniVersion: String
    let plugins: [[String: Any]]
    /// What the runtime supplies, by capability (`portMappings`, `bandwidth`, …).
    var capabilityArgs: [String: Any] = [:]

    struct Failure: Error, CustomStringConvertible {
        var plugin: String
        var command: String
        var output: String
        var description: String { "\(command) of \(plugin) failed: \(output)" }
    }

    /// ADD through the whole list; returns the final result.
    func add(containerID: String, pod: TestNamespace, ifname: String = "eth0") throws -> [String: Any] {
        var previous: [String: Any]?
        for plugin in plugins {
            previous = try run("ADD", plugin, containerID: containerID, pod: pod, ifname: ifname, prevResult: previous)
        }
        return previous ?? [:]
    }

    func check(containerID: String, pod: TestNamespace, result: [String: Any], ifname: String = "eth0") throws {
        for plugin in plugins { _ = try run("CHECK", plugin, containerID: containerID, pod: pod, ifname: ifname, prevResult: result) }
    }

    func delete(containerID: String, pod: TestNamespace, result: [String: Any], ifname: String = "eth0") throws {
        for plugin in plugins.reversed() {
            _ = try run("DEL", plugin, containerID: containerID, pod: pod, ifname: ifname, prevResult: result)
        }
    }

    private func run(_ command: String, _ plugin: [String: Any], containerID: String, pod: TestNamespace, ifname: String,
                     prevResult: [String: Any]?) throws -> [String: Any]? {
        var config = plugin
        config["cniVersion"] = cniVersion
        config["name"] = name
        if let prevResult { config["prevResult"] = prevResult }
        let capabilities = (plugin["capabilities"] as? [String: Bool] ?? [:]).filter(\.value).map(\.key)
        let runtime = capabilityArgs.filter { capabilities.contains($0.key) }
        if !runtime.isEmpty { config["runtimeConfig"] = runtime }
        let type = plugin["type"] as! String
        let binary = type == "strait-cni" ? builtProduct("strait-cni") : "\(Self.referencePlugins)/\(type)"
        let path = type == "strait-cni" ? "/usr/sbin:/usr/bin:/sbin:/bin" : "\(Self.ipv4OnlyTools):/usr/bin:/bin"
        let env = ["CNI_COMMAND=\(command)", "CNI_CONTAINERID=\(containerID)", "CNI_NETNS=\(pod.path)", "CNI_IFNAME=\(ifname)",
                   "CNI_PATH=\(Self.referencePlugins)", "PATH=\(path)"]
        let stdin = String(decoding: try JSONSerialization.data(withJSONObject: config, options: [.sortedKeys]), as: UTF8.self)
        let output = try Command.output(["ip", "netns", "exec", node.name, "env", "-i"] + env + [binary], stdin: stdin)
        guard output.succeeded else { throw Failure(plugin: type, command: command, output: output.stdout + output.stderr) }
        guard command == "ADD" else { return nil }
        return try JSONSerialization.jsonObject(with: Data(output.stdout.utf8)) as? [String: Any]
    }
}

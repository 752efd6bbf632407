import Foundation
import StraitSystem

/// `--iptables-forward-rules`: accept traffic from and to the pod network in the filter table's
/// FORWARD chain, so pods keep talking on hosts whose FORWARD policy is DROP (Docker sets it).
///
/// The rules go where that policy is: into iptables' FORWARD chain, through the host's `iptables`
/// (nft or legacy, whichever holds the policy), as flannel adds them. An accept in a table of the
/// overlay's own would not help: nftables runs every base chain of a hook, and a drop in any of
/// them is final.
///
/// Equivalent:
///
///     iptables -N STRAIT-FWD; iptables -F STRAIT-FWD
///     iptables -A STRAIT-FWD -s 10.244.0.0/16 -j ACCEPT; iptables -A STRAIT-FWD -d 10.244.0.0/16 -j ACCEPT
///     iptables -A FORWARD -m comment --comment "strait overlay: pod network" -j STRAIT-FWD
public struct ForwardRules: Sendable {
    public static let chain = "STRAIT-FWD"
    static let comment = "strait overlay: pod network"
    /// (tool, network): `iptables` for IPv4 networks, `ip6tables` for IPv6 ones.
    public let networks: [(tool: String, network: String)]

    public init(ipv4: String, ipv6: String? = nil) {
        networks = [("iptables", ipv4)] + (ipv6.map { [("ip6tables", $0)] } ?? [])
    }

    /// Installs the chain and its jump; running it again changes nothing.
    public func enable() throws(OverlayError) {
        for (tool, network) in networks {
            if !(try run(tool, ["-S", Self.chain], mayFail: true)) { try run(tool, ["-N", Self.chain]) }
            try run(tool, ["-F", Self.chain])
            try run(tool, ["-A", Self.chain, "-s", network, "-j", "ACCEPT"])
            try run(tool, ["-A", Self.chain, "-d", network, "-j", "ACCEPT"])
            if !(try run(tool, ["-C"] + jump, mayFail: true)) { try run(tool, ["-A"] + jump) }
        }
    }

    /// Removes the jump and the chain (`--iptables-forward-rules=false`); absent is fine.
    public func disable() {
        for (tool, _) in networks {
            while (try? run(tool, ["-D"] + jump, mayFail: true)) == true {}
            _ = try? run(tool, ["-F", Self.chain], mayFail: true)
            _ = try? run(tool, ["-X", Self.chain], mayFail: true)
        }
    }

    private var jump: [String] { ["FORWARD", "-m", "comment", "--comment", Self.comment, "-j", Self.chain] }

    /// Runs `tool -w 5 -t filter ARGS`; true on success. A failure throws naming the command,
    /// unless `mayFail` (a probe).
    @discardableResult
    private func run(_ tool: String, _ arguments: [String], mayFail: Bool = false) throws(OverlayError) -> Bool {
        let command = [tool, "-w", "5", "-t", "filter"] + arguments
        let output: ChildProcess.Output
        do { output = try ChildProcess.run(command) } catch {
            throw OverlayError(.kernel, "cannot add the FORWARD accept rules: \(error)")
        }
        if output.succeeded || mayFail { return output.succeeded }
        throw OverlayError(.kernel, "`\(command.joined(separator: " "))` failed (exit \(output.status)): "
            + output.stderrText.trimmingCharacters(in: .whitespacesAndNewlines))
    }
}

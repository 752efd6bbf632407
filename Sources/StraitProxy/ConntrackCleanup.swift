import Foundation
import StraitModel
import StraitSystem

/// Deletes the UDP conntrack entries that would keep sending a flow to an endpoint that is gone
/// (kube-proxy's `pkg/proxy/conntrack/cleanup.go`, the stale-UDP problem: DNS blackholed after
/// a backend changes). After each sync, for every UDP Service port:
/// - each endpoint IP programmed before and not now: entries whose original destination is one
///   of the port's service IPs (cluster, external, load-balancer) and port, or its NodePort, and
///   whose reply source is that IP;
/// - a port that had no endpoints and now has some: every entry to its service IPs and NodePort
///   (they were rejected and cached as such).
/// Equivalent: `conntrack -D -p udp --orig-dst IP --orig-port-dst PORT --reply-src EP`.
public struct ConntrackCleanup: Sendable {
    /// Runs one `conntrack` command line.
    public typealias Runner = @Sendable ([String]) async throws -> ChildProcess.Output

    private let runner: Runner

    public init(runner: @escaping Runner = { try await ChildProcess.runDetached($0) }) {
        self.runner = runner
    }

    /// The `conntrack -D` command lines that clean up after the change from `old` to `new`.
    public static func commands(from old: ServiceTable, to new: ServiceTable) -> [[String]] {
        // Only ports whose entry changed can need a cleanup; `changedPorts` finds them without
        // comparing every entry when `new` was built from `old`.
        let (upserted, removed) = new.changedPorts(since: old)
        let changed = (upserted.map(\.name) + removed).filter { $0.protocol == .udp }.sorted()
        var commands: [[String]] = []
        for name in changed {
            guard let before = old.ports[name] else { continue }
            let after = new.ports[name]
            let beforeIPs = Set(before.reachableEndpoints.map(\.address))
            let afterIPs = Set((after?.reachableEndpoints ?? []).map(\.address))
            for endpoint in beforeIPs.subtracting(afterIPs).sorted() {
                for ip in before.serviceIPs where ip.family == endpoint.family {
                    commands.append(base + ["--orig-dst", "\(ip)", "--orig-port-dst", "\(before.port)",
                                            "--reply-src", "\(endpoint)"])
                }
                if let nodePort = before.nodePort {
                    commands.append(base + family(endpoint.family) + ["--orig-port-dst", "\(nodePort)",
                                                                      "--reply-src", "\(endpoint)"])
                }
            }
        }
        for name in changed {
            guard let after = new.ports[name], let before = old.ports[name], !before.hasEndpoints, after.hasEndpoints
            else { continue }
            for ip in after.serviceIPs {
                commands.append(base + ["--orig-dst", "\(ip)", "--orig-port-dst", "\(after.port)"])
            }
            if let nodePort = after.nodePort {
                for family in Set(after.clusterIPs.map(\.family)).sorted(by: { $0.rawValue < $1.rawValue }) {
                    commands.append(base + self.family(family) + ["--orig-port-dst", "\(nodePort)"])
                }
            }
        }
        return commands
    }

    private static let base = ["conntrack", "-D", "-p", "udp"]

    private static func family(_ family: IPFamily) -> [String] {
        family == .ipv6 ? ["-f", "ipv6"] : []
    }

    /// Runs the commands (only `family`'s when given); returns how many entries were deleted. Exit
    /// status 1 with "0 flow entries" means there was nothing to delete.
    @discardableResult
    public func clean(from old: ServiceTable, to new: ServiceTable, family: IPFamily? = nil) async throws -> Int {
        var deleted = 0
        for command in Self.commands(from: old, to: new) where family == nil || Self.family(of: command) == family {
            deleted += try await run(command)
        }
        return deleted
    }

    /// The family a command cleans: IPv6 with `-f ipv6` or an IPv6 `--orig-dst`, else IPv4.
    static func family(of command: [String]) -> IPFamily {
        let ipv6 = zip(command, command.dropFirst()).contains { flag, value in
            (flag == "-f" && value == "ipv6") || (flag == "--orig-dst" && value.contains(":"))
        }
        return ipv6 ? .ipv6 : .ipv4
    }

    struct Failure: Error, CustomStringConvertible {
        var command: [String]
        var result: ChildProcess.Output
        var description: String {
            "\(command.joined(separator: " ")) exited \(result.status): \(result.stderrText.trimmingCharacters(in: .whitespacesAndNewlines))"
        }
    }

    func run(_ command: [String]) async throws -> Int {
        let result = try await runner(command)
        let count = Self.deletedCount(result.stderrText + result.stdoutText)
        if result.status == 0 || (result.status == 1 && count == 0) { return count ?? 0 }
        throw Failure(command: command, result: result)
    }

    /// `conntrack v1.4.7 (conntrack-tools): 2 flow entries have been deleted.`
    static func deletedCount(_ text: String) -> Int? {
        guard let range = text.range(of: " flow entr") else { return nil }
        let digits = text[..<range.lowerBound].reversed().prefix { $0.isNumber }
        return Int(String(digits.reversed()))
    }
}

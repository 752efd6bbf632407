#if canImport(Glibc)
import Glibc
#endif
import StraitModel
import StraitProxy
import StraitSystem

/// Which iptables the rules go through. Debian's default `iptables` is the nf_tables one; the legacy
/// binaries restore the same rules 10–18× faster (see kube-proxy-measured.md), so both are offered.
public enum IPTablesFlavor: String, Sendable, CaseIterable, CustomStringConvertible {
    case nft, legacy

    public var description: String { rawValue }

    /// The flavor the host's plain `iptables` is: `iptables --version` prints `(nf_tables)` or `(legacy)`.
    public static func hostDefault() -> IPTablesFlavor {
        guard let output = try? IPTablesExecutable.run(["iptables", "--version"]) else { return .nft }
        return output.stdoutText.contains("legacy") ? .legacy : .nft
    }

    /// The binary for `tool` (`iptables`, `iptables-save`, `iptables-restore`) of this flavor and `family`.
    public func binary(_ tool: String, family: IPFamily) -> String {
        let base = family == .ipv6 ? tool.replacingPrefix("iptables", with: "ip6tables") : tool
        // iptables-nft-restore, ip6tables-legacy-save, …
        let parts = base.split(separator: "-", maxSplits: 1)
        return parts.count == 2 ? "\(parts[0])-\(rawValue)-\(parts[1])" : "\(base)-\(rawValue)"
    }
}

extension String {
    fileprivate func replacingPrefix(_ prefix: String, with replacement: String) -> String {
        hasPrefix(prefix) ? replacement + dropFirst(prefix.count) : self
    }
}

/// A failed iptables command: what was run, how it exited, what it said.
public struct IPTablesError: Error, CustomStringConvertible {
    public var operation: String
    public var arguments: [String]
    public var status: Int32
    public var message: String

    public var description: String {
        "\(operation) failed: `\(arguments.joined(separator: " "))` exited \(status): \(message)"
    }
}

/// Runs the iptables binaries through `ChildProcess` (stdin written while both outputs are
/// drained, so a 40 MB restore can neither block on a full pipe nor deadlock).
enum IPTablesExecutable {
    /// Blocks the calling thread: for start-up checks (`iptables --version`), not for syncs.
    static func run(_ arguments: [String], stdin: [[UInt8]] = []) throws -> ChildProcess.Output {
        do { return try ChildProcess.run(arguments, stdin: stdin) } catch {
            throw IPTablesError(operation: "spawn", arguments: arguments, status: -1, message: error.reason)
        }
    }

    /// Runs on a thread of its own (`ChildProcess.runDetached`), so a long restore holds no thread
    /// of Swift's cooperative pool.
    static func runDetached(_ arguments: [String], stdin: [[UInt8]] = [],
                            wholeInputFirst: Bool = false) async throws -> ChildProcess.Output {
        do {
            return try await ChildProcess.runDetached(arguments, stdin: stdin, wholeInputFirst: wholeInputFirst)
        } catch {
            throw IPTablesError(operation: "spawn", arguments: arguments, status: -1, message: error.reason)
        }
    }
}

/// The three iptables tools of one flavor and family, run in the current network namespace or,
/// for tests, in a named one (`ip netns exec NAME …`).
public struct IPTablesRestore: Sendable {
    public var flavor: IPTablesFlavor
    public var family: IPFamily
    public var namespace: String?

    public init(flavor: IPTablesFlavor, family: IPFamily = .ipv4, namespace: String? = nil) {
        self.flavor = flavor
        self.family = family
        self.namespace = namespace
    }

    private func command(_ tool: String, _ arguments: [String]) -> [String] {
        (namespace.map { ["ip", "netns", "exec", $0] } ?? []) + [flavor.binary(tool, family: family)] + arguments
    }

    /// Applies `input` (`*nat … COMMIT *filter … COMMIT`) in one transaction per table, leaving every
    /// chain the input does not name alone. Equivalent: `iptables-restore -w 5 --noflush`.
    /// (Without kube-proxy's `--counters`: every chain line says `[0:0]` anyway, and iptables-nft
    /// restores 20% slower with it.)
    /// The input comes in parts, written one after another (so a large sync is not copied into one buffer).
    /// The tool gets its whole input before it starts: it commits each table as it reads it, so input
    /// cut short by this process dying mid-write would change the first table and not the next. Once
    /// started, a restore ends as a whole even when the proxy is killed (the kill-fault suite shows it).
    public func restore(_ input: [[UInt8]]) async throws {
        let arguments = command("iptables-restore", ["-w", "5", "--noflush"])
        let output = try await IPTablesExecutable.runDetached(arguments, stdin: input, wholeInputFirst: true)
        guard output.status == 0 else {
            throw IPTablesError(operation: "iptables-restore", arguments: arguments, status: output.status,
                                message: Self.context(output.stderrText, Array(input.joined())))
        }
    }

    /// The tables' current rules. Equivalent: `iptables-save [-t TABLE]`.
    public func save(table: String? = nil) async throws -> String {
        let arguments = command("iptables-save", table.map { ["-t", $0] } ?? [])
        let output = try await IPTablesExecutable.runDetached(arguments)
        guard output.status == 0 else {
            throw IPTablesError(operation: "iptables-save", arguments: arguments, status: output.status,
                                message: output.stderrText)
        }
        return output.stdoutText
    }

    /// The error with the input lines around the one iptables-restore names ("line N failed").
    private static func context(_ stderr: String, _ input: [UInt8]) -> String {
        let message = stderr.trimmingSuffixNewlines()
        let words = message.split(whereSeparator: { $0 == " " || $0 == ":" || $0.isNewline })
        guard let at = words.firstIndex(of: "line"), at + 1 < words.count,
              let number = Int(words[at + 1]), number > 0 else { return message }
        let lines = String(decoding: input, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false)
        let shown = lines[max(0, number - 2)..<min(lines.count, number + 1)].joined(separator: "\n")
        return "\(message)\n\(shown)"
    }
}

extension String {
    fileprivate func trimmingSuffixNewlines() -> String {
        var text = Substring(self)
        while text.last?.isNewline == true { text.removeLast() }
        return String(text)
    }
}

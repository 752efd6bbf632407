#if canImport(Glibc)
import Glibc
#endif
import StraitModel
import Synchronization

/// Which iptables the rules go through. Debian's default `iptables` is the nf_tables one; the legacy
/// binaries restore the same rules 10–18× faster (see kube-proxy-measured.md), so both are offered.
public enum IPTablesFlavor: String, Sendable, CaseIterable, CustomStringConvertible {
    case nft, legacy

    public var description: String { rawValue }

    /// The flavor the host's plain `iptables` is: `iptables --version` prints `(nf_tables)` or `(legacy)`.
    public static func hostDefault() -> IPTablesFlavor {
        guard let output = try? IPTablesExecutable.run(["iptables", "--version"]) else { return .nft }
        return output.stdout.contains("legacy") ? .legacy : .nft
    }

    /// The binary for `tool` (`iptables`, `iptables-save`, `iptables-restore`) of this flavor and `family`.
    func binary(_ tool: String, family: IPFamily) -> String {
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

/// What a finished command printed.
struct IPTablesOutput {
    var status: Int32
    var stdout: String
    var stderr: String
}

/// Held from creating pipes to spawning, so no concurrently spawned child inherits them before they
/// are marked close-on-exec.
private let spawnLock = Mutex(())
private let sigpipeIgnored: Void = { _ = signal(SIGPIPE, SIG_IGN) }()

/// Runs the iptables binaries as child processes with posix_spawn (Foundation's `Process` hangs
/// under concurrency here). Input goes to stdin while both outputs are drained with poll, so a
/// 40 MB restore can neither block on a full pipe nor deadlock against the child's output.
enum IPTablesExecutable {
    static func run(_ arguments: [String], stdin: [[UInt8]] = []) throws -> IPTablesOutput {
        _ = sigpipeIgnored
        var pipes: [[Int32]] = []
        let spawned: (pid_t, Int32)? = spawnLock.withLock { _ in
            for _ in 0..<3 {
                var ends: [Int32] = [0, 0]
                guard pipe(&ends) == 0 else { return nil }
                for fd in ends { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
                pipes.append(ends)
            }
            return spawn(arguments, stdin: pipes[0][0], stdout: pipes[1][1], stderr: pipes[2][1])
        }
        guard let (pid, result) = spawned else {
            for fd in pipes.joined() { close(fd) }
            throw IPTablesError(operation: "pipe", arguments: arguments, status: -1, message: "errno \(errno)")
        }
        close(pipes[0][0]); close(pipes[1][1]); close(pipes[2][1])
        guard result == 0 else {
            close(pipes[0][1]); close(pipes[1][0]); close(pipes[2][0])
            throw IPTablesError(operation: "spawn", arguments: arguments, status: -1,
                                message: String(cString: strerror(result)))
        }
        let (out, err) = exchange(input: pipes[0][1], bytes: stdin, stdout: pipes[1][0], stderr: pipes[2][0])
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        let exit = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
        return IPTablesOutput(status: exit, stdout: String(decoding: out, as: UTF8.self),
                              stderr: String(decoding: err, as: UTF8.self))
    }

    /// Writes `bytes` to `input` and reads `stdout` and `stderr` to their end, all at once with poll.
    private static func exchange(input: Int32, bytes parts: [[UInt8]], stdout: Int32, stderr: Int32) -> ([UInt8], [UInt8]) {
        var collected: [Int32: [UInt8]] = [stdout: [], stderr: []]
        var readers = [stdout, stderr]
        var writer: Int32? = input
        var written = 0
        var remaining = parts.filter { !$0.isEmpty }[...]
        if remaining.isEmpty { close(input); writer = nil }
        _ = fcntl(input, F_SETFL, fcntl(input, F_GETFL) | O_NONBLOCK)
        var buffer = [UInt8](repeating: 0, count: 65536)
        while !readers.isEmpty || writer != nil {
            var fds = readers.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
            if let writer { fds.append(pollfd(fd: writer, events: Int16(POLLOUT), revents: 0)) }
            if poll(&fds, nfds_t(fds.count), -1) < 0 {
                if errno == EINTR { continue }
                break
            }
            for entry in fds where entry.revents != 0 {
                if entry.fd == writer, let bytes = remaining.first {
                    let count = bytes.withUnsafeBytes { write(entry.fd, $0.baseAddress! + written, bytes.count - written) }
                    if count > 0 { written += count }
                    if written >= bytes.count {
                        remaining.removeFirst()
                        written = 0
                    }
                    if remaining.isEmpty || (count < 0 && errno != EAGAIN && errno != EINTR) {
                        close(entry.fd)
                        writer = nil
                    }
                } else {
                    let count = read(entry.fd, &buffer, buffer.count)
                    if count > 0 {
                        collected[entry.fd]!.append(contentsOf: buffer[0..<count])
                    } else if count == 0 || errno != EINTR {
                        close(entry.fd)
                        readers.removeAll { $0 == entry.fd }
                    }
                }
            }
        }
        return (collected[stdout]!, collected[stderr]!)
    }

    private static func spawn(_ arguments: [String], stdin: Int32, stdout: Int32, stderr: Int32) -> (pid_t, Int32) {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, stdin, 0)
        posix_spawn_file_actions_adddup2(&actions, stdout, 1)
        posix_spawn_file_actions_adddup2(&actions, stderr, 2)
        var argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
        defer { for pointer in argv { free(pointer) } }
        var pid: pid_t = 0
        let result = posix_spawnp(&pid, arguments[0], &actions, nil, &argv, environ)
        return (pid, result)
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
    public func restore(_ input: [[UInt8]]) throws {
        let arguments = command("iptables-restore", ["-w", "5", "--noflush"])
        let output = try IPTablesExecutable.run(arguments, stdin: input)
        guard output.status == 0 else {
            throw IPTablesError(operation: "iptables-restore", arguments: arguments, status: output.status,
                                message: Self.context(output.stderr, Array(input.joined())))
        }
    }

    /// The tables' current rules. Equivalent: `iptables-save [-t TABLE]`.
    public func save(table: String? = nil) throws -> String {
        let arguments = command("iptables-save", table.map { ["-t", $0] } ?? [])
        let output = try IPTablesExecutable.run(arguments)
        guard output.status == 0 else {
            throw IPTablesError(operation: "iptables-save", arguments: arguments, status: output.status, message: output.stderr)
        }
        return output.stdout
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

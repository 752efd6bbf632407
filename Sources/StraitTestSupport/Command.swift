#if canImport(Glibc)
import Glibc
#endif
import StraitSystem

/// What a finished command printed and how it exited.
public struct CommandOutput: Sendable {
    public let status: Int32
    public let stdout: String
    public let stderr: String

    public var succeeded: Bool { status == 0 }
}

/// A command the test harness could not run, or that failed where success was required.
public struct CommandFailure: Error, CustomStringConvertible {
    public let arguments: [String]
    public let output: CommandOutput?
    public let reason: String

    public init(arguments: [String], output: CommandOutput?, reason: String) {
        self.arguments = arguments
        self.output = output
        self.reason = reason
    }

    public var description: String {
        var text = "`\(arguments.joined(separator: " "))` \(reason)"
        if let output, !output.stderr.isEmpty { text += ": \(output.stderr)" }
        return text
    }
}

/// Runs tools (`ip`, `nft`, `ping`, …) for tests and returns what they printed (through
/// `ChildProcess`, the project's one process runner).
public enum Command {
    /// Runs `arguments` (the first is looked up in PATH) and returns its output, whatever its exit status.
    @discardableResult
    public static func output(_ arguments: [String], stdin: String? = nil) throws -> CommandOutput {
        let result = try ChildProcess.run(arguments, stdin: stdin.map { [Array($0.utf8)] } ?? [])
        return CommandOutput(status: result.status, stdout: result.stdoutText, stderr: result.stderrText)
    }

    /// Runs `arguments` and throws unless it exits 0; returns its standard output.
    @discardableResult
    public static func run(_ arguments: [String], stdin: String? = nil) throws -> String {
        let result = try output(arguments, stdin: stdin)
        guard result.succeeded else {
            throw CommandFailure(arguments: arguments, output: result, reason: "exited \(result.status)")
        }
        return result.stdout
    }

    /// Starts `arguments` with `stdin` as its input and its output discarded, and returns at once
    /// with its PID (for tests that kill a process mid-way). Reap it with `waitForExit`.
    public static func start(_ arguments: [String], stdin: String) throws -> pid_t {
        try ChildProcess.start(arguments, stdin: Array(stdin.utf8))
    }

    /// Waits for a process from `start` to end.
    public static func waitForExit(_ pid: pid_t) {
        ChildProcess.waitForExit(pid)
    }

    /// Ends a server the test started: SIGTERM, then SIGKILL if it has not exited within `grace`;
    /// reaps it either way. Equivalent: `kill PID; timeout GRACE tail --pid PID -f /dev/null || kill -9 PID`.
    public static func terminate(_ pid: pid_t, grace: Duration) {
        kill(pid, SIGTERM)
        var status: Int32 = 0
        let deadline = ContinuousClock.now + grace
        while ContinuousClock.now < deadline {
            if waitpid(pid, &status, WNOHANG) == pid { return }
            usleep(20_000)
        }
        kill(pid, SIGKILL)
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
    }
}

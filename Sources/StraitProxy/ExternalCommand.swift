import NIOPosix
import StraitSystem

/// What a tool printed and how it ended.
public struct CommandResult: Sendable, Hashable {
    public var status: Int32
    public var stdout: String
    public var stderr: String

    public init(status: Int32, stdout: String = "", stderr: String = "") {
        self.status = status
        self.stdout = stdout
        self.stderr = stderr
    }
}

/// Runs a tool (looked up in PATH) through `ChildProcess` on NIO's blocking thread pool, so the
/// wait never holds a concurrency thread.
public enum ExternalCommand {
    public static func run(_ arguments: [String]) async throws -> CommandResult {
        try await NIOThreadPool.singleton.runIfActive {
            let output = try ChildProcess.run(arguments)
            return CommandResult(status: output.status, stdout: output.stdoutText, stderr: output.stderrText)
        }
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import NIOConcurrencyHelpers
import NIOPosix

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

/// Runs a tool (looked up in PATH) with `posix_spawnp` on NIO's blocking thread pool, so the
/// wait never holds a concurrency thread. Foundation's `Process` is avoided: it hangs under
/// concurrency here.
public enum ExternalCommand {
    private static let spawnLock = NIOLock()

    public static func run(_ arguments: [String]) async throws -> CommandResult {
        try await NIOThreadPool.singleton.runIfActive { try runBlocking(arguments) }
    }

    public struct SpawnError: Error, CustomStringConvertible {
        public var arguments: [String]
        public var reason: String
        public var description: String { "cannot run \(arguments.joined(separator: " ")): \(reason)" }
    }

    static func runBlocking(_ arguments: [String]) throws -> CommandResult {
        var out: [Int32] = [-1, -1]
        var err: [Int32] = [-1, -1]
        var pid: pid_t = 0
        let spawned: Int32 = spawnLock.withLock {
            guard pipe(&out) == 0, pipe(&err) == 0 else { return errno }
            for fd in out + err { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
            var actions = posix_spawn_file_actions_t()
            posix_spawn_file_actions_init(&actions)
            defer { posix_spawn_file_actions_destroy(&actions) }
            posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
            posix_spawn_file_actions_adddup2(&actions, out[1], 1)
            posix_spawn_file_actions_adddup2(&actions, err[1], 2)
            let argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
            defer { argv.forEach { free($0) } }
            return posix_spawnp(&pid, arguments[0], &actions, nil, argv, environ)
        }
        for fd in [out[1], err[1]] where fd >= 0 { close(fd) }
        guard spawned == 0 else {
            for fd in [out[0], err[0]] where fd >= 0 { close(fd) }
            throw SpawnError(arguments: arguments, reason: String(cString: strerror(spawned)))
        }
        let (stdout, stderr) = drain(out[0], err[0])
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        let exit = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
        return CommandResult(status: exit, stdout: String(decoding: stdout, as: UTF8.self),
                             stderr: String(decoding: stderr, as: UTF8.self))
    }

    private static func drain(_ out: Int32, _ err: Int32) -> ([UInt8], [UInt8]) {
        var collected: [Int32: [UInt8]] = [out: [], err: []]
        var open = [out, err]
        var buffer = [UInt8](repeating: 0, count: 16384)
        while !open.isEmpty {
            var fds = open.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
            if poll(&fds, nfds_t(fds.count), -1) < 0 {
                if errno == EINTR { continue }
                break
            }
            for entry in fds where entry.revents != 0 {
                let count = read(entry.fd, &buffer, buffer.count)
                if count > 0 {
                    collected[entry.fd]!.append(contentsOf: buffer[0..<count])
                } else if count == 0 || errno != EINTR {
                    close(entry.fd)
                    open.removeAll { $0 == entry.fd }
                }
            }
        }
        return (collected[out]!, collected[err]!)
    }
}

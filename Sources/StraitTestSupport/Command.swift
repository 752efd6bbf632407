#if canImport(Glibc)
import Glibc
#endif
import Synchronization

/// Held from creating a command's pipes to spawning it, so no other test's child inherits them
/// before they are marked close-on-exec (`pipe2` is out of reach without `_GNU_SOURCE`).
private let spawnLock = Mutex(())

/// A child that exits without reading its stdin must not kill the test process with SIGPIPE.
private let sigpipeIgnored: Void = { _ = signal(SIGPIPE, SIG_IGN) }()

/// A pipe whose two ends close on exec.
private func closeOnExecPipe() -> [Int32]? {
    _ = sigpipeIgnored
    var ends: [Int32] = [0, 0]
    guard pipe(&ends) == 0 else { return nil }
    for fd in ends { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
    return ends
}

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

/// Runs tools (`ip`, `nft`, `ping`, …) for tests and returns what they printed. Built on
/// `posix_spawn` and `waitpid` rather than Foundation's `Process`, whose `waitUntilExit` can hang
/// when many tests spawn processes at once.
public enum Command {
    /// Runs `arguments` (the first is looked up in PATH) and returns its output, whatever its exit status.
    @discardableResult
    public static func output(_ arguments: [String], stdin: String? = nil) throws -> CommandOutput {
        let spawnedPipes: ([Int32], [Int32], [Int32], pid_t, Int32)? = spawnLock.withLock { _ in
            guard let input = closeOnExecPipe(), let output = closeOnExecPipe(), let errors = closeOnExecPipe() else { return nil }
            let (pid, result) = spawn(arguments, stdin: input[0], stdout: output[1], stderr: errors[1])
            return (input, output, errors, pid, result)
        }
        guard let (input, output, errors, pid, spawned) = spawnedPipes else {
            throw CommandFailure(arguments: arguments, output: nil, reason: "could not create pipes (errno \(errno))")
        }
        for fd in [input[0], output[1], errors[1]] { close(fd) }
        guard spawned == 0 else {
            for fd in [input[1], output[0], errors[0]] { close(fd) }
            throw CommandFailure(arguments: arguments, output: nil, reason: "could not start (\(String(cString: strerror(spawned))))")
        }
        let bytes = Array((stdin ?? "").utf8)
        var written = 0
        while written < bytes.count {
            let count = bytes.withUnsafeBytes { write(input[1], $0.baseAddress! + written, bytes.count - written) }
            if count <= 0 { break }
            written += count
        }
        close(input[1])
        let (out, err) = drain(output[0], errors[0])
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        let exit = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
        return CommandOutput(status: exit, stdout: String(decoding: out, as: UTF8.self),
                             stderr: String(decoding: err, as: UTF8.self))
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

    /// Reads both pipes to their end (with poll, so neither fills up and blocks the child), then closes them.
    private static func drain(_ out: Int32, _ err: Int32) -> ([UInt8], [UInt8]) {
        var collected: [Int32: [UInt8]] = [out: [], err: []]
        var open = [out, err]
        var buffer = [UInt8](repeating: 0, count: 65536)
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

extension Command {
    /// Starts `arguments` with `stdin` as its input and its output discarded, and returns at once
    /// with its PID (for tests that kill a process mid-way). Reap it with `waitForExit`.
    public static func start(_ arguments: [String], stdin: String) throws -> pid_t {
        let started: ([Int32], pid_t, Int32)? = spawnLock.withLock { _ in
            guard let input = closeOnExecPipe() else { return nil }
            let (pid, result) = spawn(arguments, stdin: input[0], stdout: nil, stderr: nil)
            return (input, pid, result)
        }
        guard let (input, pid, spawned) = started else {
            throw CommandFailure(arguments: arguments, output: nil, reason: "could not create a pipe")
        }
        close(input[0])
        defer { close(input[1]) }
        guard spawned == 0 else {
            throw CommandFailure(arguments: arguments, output: nil, reason: "could not start (\(String(cString: strerror(spawned))))")
        }
        let bytes = Array(stdin.utf8)
        _ = bytes.withUnsafeBytes { write(input[1], $0.baseAddress!, bytes.count) }
        return pid
    }

    /// Waits for a process from `start` to end.
    public static func waitForExit(_ pid: pid_t) {
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
    }
}

/// Spawns `arguments` (looked up in PATH) with the given descriptors as its standard streams;
/// nil sends that stream to /dev/null. Returns the PID and posix_spawn's result.
private func spawn(_ arguments: [String], stdin: Int32, stdout: Int32?, stderr: Int32?) -> (pid_t, Int32) {
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_adddup2(&actions, stdin, 0)
    for (fd, target) in [(stdout, Int32(1)), (stderr, Int32(2))] {
        if let fd { posix_spawn_file_actions_adddup2(&actions, fd, target) } else {
            posix_spawn_file_actions_addopen(&actions, target, "/dev/null", O_WRONLY, 0)
        }
    }
    var argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
    defer { for pointer in argv { free(pointer) } }
    var pid: pid_t = 0
    let result = posix_spawnp(&pid, arguments[0], &actions, nil, &argv, environ)
    return (pid, result)
}

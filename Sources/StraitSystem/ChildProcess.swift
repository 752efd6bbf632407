import CSystemShim
#if canImport(Glibc)
import Glibc
#endif
import Synchronization

/// Runs tools (`iptables-restore`, `conntrack`, `ip`, …) as child processes with `posix_spawn`.
/// Foundation's `Process` is not used: its `waitUntilExit` hangs when many tasks spawn at once.
/// Input goes to stdin while both outputs are drained with poll, so a large input can neither block
/// on a full pipe nor deadlock against the child's output.
public enum ChildProcess {
    /// What a finished child printed and how it exited (128 + N when killed by signal N).
    public struct Output: Sendable {
        public var status: Int32
        public var stdout: [UInt8]
        public var stderr: [UInt8]

        public init(status: Int32, stdout: [UInt8] = [], stderr: [UInt8] = []) {
            self.status = status
            self.stdout = stdout
            self.stderr = stderr
        }

        public var succeeded: Bool { status == 0 }
        public var stdoutText: String { String(decoding: stdout, as: UTF8.self) }
        public var stderrText: String { String(decoding: stderr, as: UTF8.self) }
    }

    /// A child that could not be started.
    public struct SpawnError: Error, Sendable, CustomStringConvertible {
        public var arguments: [String]
        public var reason: String
        public var description: String { "cannot run `\(arguments.joined(separator: " "))`: \(reason)" }
    }

    /// Runs `arguments` (the first looked up in PATH) to its end, writing `stdin` (in parts, one
    /// after another, so a large input need not be copied into one buffer). Blocks the calling thread.
    ///
    /// `wholeInputFirst` hands the child all of `stdin` before it starts (an in-memory file as its
    /// standard input instead of a pipe): if this process dies meanwhile, the child still reads its
    /// input to the end instead of an early end of file. `iptables-restore` needs this: it commits
    /// each table as it reads it, so input cut after `*filter … COMMIT` would change filter alone.
    public static func run(_ arguments: [String], stdin: [[UInt8]] = [],
                           wholeInputFirst: Bool = false) throws(SpawnError) -> Output {
        let inputFile: Int32? = if wholeInputFirst { try memoryFile(arguments, holding: stdin) } else { nil }
        defer { if let inputFile { close(inputFile) } }
        let (pid, input, output, errors) = try spawn(arguments, capture: true, stdinFile: inputFile)
        let (out, err) = exchange(input: input, parts: inputFile == nil ? stdin : [], stdout: output!, stderr: errors!)
        return Output(status: waitForExit(pid), stdout: out, stderr: err)
    }

    /// An anonymous in-memory file holding `parts`, positioned at its start.
    /// Equivalent: `memfd_create("stdin", MFD_CLOEXEC)`, `write`, `lseek(fd, 0, SEEK_SET)`.
    private static func memoryFile(_ arguments: [String], holding parts: [[UInt8]]) throws(SpawnError) -> Int32 {
        let fd = strait_sys_memfd_create("strait-child-stdin")
        guard fd >= 0 else {
            let reason = "cannot create its input file: \(String(cString: strerror(errno)))"
            throw SpawnError(arguments: arguments, reason: reason)
        }
        for part in parts {
            var written = 0
            while written < part.count {
                let count = part.withUnsafeBytes { write(fd, $0.baseAddress! + written, part.count - written) }
                if count < 0 && errno == EINTR { continue }
                guard count > 0 else {
                    let reason = "cannot write its input file: \(String(cString: strerror(errno)))"
                    close(fd)
                    throw SpawnError(arguments: arguments, reason: reason)
                }
                written += count
            }
        }
        lseek(fd, 0, SEEK_SET)
        return fd
    }

    /// Starts `arguments` with `stdin` as its input and its output discarded; returns its PID at once
    /// (for a server, or a process a test kills mid-way). Reap it with `waitForExit`.
    public static func start(_ arguments: [String], stdin: [UInt8] = []) throws(SpawnError) -> pid_t {
        let (pid, input, _, _) = try spawn(arguments, capture: false, stdinFile: nil)
        _ = exchange(input: input, parts: [stdin], stdout: nil, stderr: nil)
        return pid
    }

    /// Waits for a child to end; its exit status, or 128 + N when killed by signal N.
    @discardableResult
    public static func waitForExit(_ pid: pid_t) -> Int32 {
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        return (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
    }

    /// Held from creating pipes to spawning, so no concurrently spawned child inherits them before
    /// they are marked close-on-exec (`pipe2` needs `_GNU_SOURCE`, out of Swift's reach).
    private static let spawnLock = Mutex(())
    /// A child that exits without reading its stdin must not kill this process with SIGPIPE.
    private static let sigpipeIgnored: Void = { _ = signal(SIGPIPE, SIG_IGN) }()

    /// Spawns the child with a stdin pipe (or `stdinFile` as its stdin, when given; the returned
    /// input end is then -1) and, when capturing, stdout and stderr pipes (otherwise /dev/null);
    /// returns the PID and the parent's ends.
    private static func spawn(_ arguments: [String], capture: Bool, stdinFile: Int32?) throws(SpawnError)
        -> (pid_t, input: Int32, output: Int32?, errors: Int32?) {
        _ = sigpipeIgnored
        var pipes: [[Int32]] = []
        let result: (pid_t, Int32)? = spawnLock.withLock { _ in
            for _ in 0..<(capture ? 3 : 1) {
                var ends: [Int32] = [0, 0]
                guard pipe(&ends) == 0 else { return nil }
                for fd in ends { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
                pipes.append(ends)
            }
            var actions = posix_spawn_file_actions_t()
            posix_spawn_file_actions_init(&actions)
            defer { posix_spawn_file_actions_destroy(&actions) }
            posix_spawn_file_actions_adddup2(&actions, stdinFile ?? pipes[0][0], 0)
            for target in [Int32(1), 2] {
                if capture {
                    posix_spawn_file_actions_adddup2(&actions, pipes[Int(target)][1], target)
                } else {
                    posix_spawn_file_actions_addopen(&actions, target, "/dev/null", O_WRONLY, 0)
                }
            }
            var argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
            defer { for pointer in argv { free(pointer) } }
            var pid: pid_t = 0
            let spawned = posix_spawnp(&pid, arguments[0], &actions, nil, &argv, environ)
            return (pid, spawned)
        }
        guard let (pid, spawned) = result else {
            for fd in pipes.joined() { close(fd) }
            throw SpawnError(arguments: arguments, reason: "cannot create a pipe: \(String(cString: strerror(errno)))")
        }
        // The child's ends belong to the child now.
        close(pipes[0][0])
        for index in pipes.indices.dropFirst() { close(pipes[index][1]) }
        if stdinFile != nil { close(pipes[0][1]) }
        guard spawned == 0 else {
            if stdinFile == nil { close(pipes[0][1]) }
            for index in pipes.indices.dropFirst() { close(pipes[index][0]) }
            throw SpawnError(arguments: arguments, reason: String(cString: strerror(spawned)))
        }
        return (pid, stdinFile == nil ? pipes[0][1] : -1, capture ? pipes[1][0] : nil, capture ? pipes[2][0] : nil)
    }

    /// Writes `parts` to `input` and reads `stdout` and `stderr` (when given) to their end, all at
    /// once with poll; closes every descriptor it was given.
    private static func exchange(input: Int32, parts: [[UInt8]], stdout: Int32?, stderr: Int32?) -> ([UInt8], [UInt8]) {
        var collected: [Int32: [UInt8]] = [:]
        var readers = [stdout, stderr].compactMap { $0 }
        for fd in readers { collected[fd] = [] }
        var writer: Int32? = input
        var written = 0
        var remaining = parts.filter { !$0.isEmpty }[...]
        if input < 0 {
            writer = nil
        } else if remaining.isEmpty {
            close(input)
            writer = nil
        }
        if writer != nil { _ = fcntl(input, F_SETFL, fcntl(input, F_GETFL) | O_NONBLOCK) }
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
        return (stdout.flatMap { collected[$0] } ?? [], stderr.flatMap { collected[$0] } ?? [])
    }
}

#if canImport(Glibc)
import Glibc
#endif
import StraitSystem

/// `cni-exec PLUGIN CONFIG POD_NETNS COUNT`: runs PLUGIN as a container runtime does — libcni starts
/// a plugin with Go's `os/exec` (a vfork-style clone, then exec; glibc's `posix_spawn` does the same),
/// writes the configuration to its stdin pipe and reads the result from its stdout pipe — for ADD
/// then DEL of one pod (`CNI_CONTAINERID=benchI`, `CNI_IFNAME=eth0`), COUNT times. Prints
/// `<ADD µs> <DEL µs>` per pod, the time from the spawn to the plugin's exit with its output read.
/// `cni-exec PLUGIN - - COUNT version`: COUNT VERSION requests instead, `<µs>` each: a plugin's
/// start and end alone (the exec floor when PLUGIN is `/bin/true`, which reads nothing).
/// Run it in the node's namespace (`ip netns exec NODE strait-bench cni-exec …`).
func cniExecWorkload(_ arguments: [String]) throws {
    guard arguments.count >= 4, let count = Int(arguments[3]), count > 0, count < 100_000 else {
        throw CNIExecUsage()
    }
    let (plugin, configPath, pod) = (arguments[0], arguments[1], arguments[2])
    let versionOnly = arguments.count > 4 && arguments[4] == "version"
    let config = versionOnly ? Array(#"{"cniVersion":"1.0.0"}"#.utf8) : try readFileBytes(configPath)
    // /bin/true exits without reading its stdin: the write must fail with EPIPE, not kill the bench.
    signal(SIGPIPE, SIG_IGN)
    let start = monotonicSeconds()
    for index in 0..<count {
        if versionOnly {
            print(Int(try timedRun(plugin, config: config, environment: ["CNI_COMMAND=VERSION"]) * 1e6))
            continue
        }
        let pod = [
            "CNI_CONTAINERID=bench\(index)", "CNI_NETNS=/run/netns/\(pod)", "CNI_IFNAME=eth0",
            "CNI_PATH=/usr/lib/cni",
        ]
        let add = try timedRun(plugin, config: config, environment: ["CNI_COMMAND=ADD"] + pod)
        let del = try timedRun(plugin, config: config, environment: ["CNI_COMMAND=DEL"] + pod)
        print("\(Int(add * 1e6)) \(Int(del * 1e6))")
    }
    print("seconds=\(monotonicSeconds() - start)")
}

/// Spawns `plugin` with this process's environment plus `environment`, `config` on its stdin and its
/// stdout read to the end; the seconds until it exited. A plugin that fails fails the workload.
private func timedRun(_ plugin: String, config: [UInt8], environment: [String]) throws -> Double {
    var input: [Int32] = [0, 0], output: [Int32] = [0, 0]
    guard pipe(&input) == 0, pipe(&output) == 0 else {
        throw CNIExecFailure(plugin: plugin, problem: "pipe: \(String(cString: strerror(errno)))")
    }
    // The child keeps only its dup2'd stdin and stdout.
    for descriptor in input + output { _ = fcntl(descriptor, F_SETFD, FD_CLOEXEC) }
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_adddup2(&actions, input[0], 0)
    posix_spawn_file_actions_adddup2(&actions, output[1], 1)

    var inherited: [String] = []
    var entry = environ
    while let variable = entry.pointee {
        inherited.append(String(cString: variable))
        entry += 1
    }
    let argv = [strdup(plugin)] + [nil]
    let envp = (inherited + environment).map { strdup($0) } + [nil]
    defer {
        argv.forEach { free($0) }
        envp.forEach { free($0) }
    }

    let began = monotonicSeconds()
    var pid = pid_t()
    let spawned = posix_spawn(&pid, plugin, &actions, nil, argv, envp)
    close(input[0])
    close(output[1])
    guard spawned == 0 else {
        close(input[1])
        close(output[0])
        throw CNIExecFailure(plugin: plugin, problem: "posix_spawn: \(String(cString: strerror(spawned)))")
    }
    _ = config.withUnsafeBytes { write(input[1], $0.baseAddress, $0.count) }
    close(input[1])
    var result: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 4096)
    while true {
        let read = buffer.withUnsafeMutableBytes { Glibc.read(output[0], $0.baseAddress, $0.count) }
        if read > 0 { result += buffer[..<read]; continue }
        if read < 0 && errno == EINTR { continue }
        break
    }
    close(output[0])
    var status: Int32 = 0
    while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
    let elapsed = monotonicSeconds() - began
    // WIFEXITED and WEXITSTATUS: the low 7 bits are 0, and the exit code is the next byte.
    guard status & 0x7f == 0, (status >> 8) & 0xff == 0 else {
        throw CNIExecFailure(plugin: plugin, problem: "exit status \(status): \(String(decoding: result, as: UTF8.self))")
    }
    return elapsed
}

private struct CNIExecFailure: Error, CustomStringConvertible {
    var plugin: String
    var problem: String
    var description: String { "cni-exec \(plugin): \(problem)" }
}

private struct CNIExecUsage: Error, CustomStringConvertible {
    var description: String {
        "usage: strait-bench cni-exec PLUGIN CONFIG POD_NETNS COUNT | cni-exec PLUGIN - - COUNT version"
    }
}

import Foundation

/// A network namespace made for one test. Its name is unique to this process and test,
/// so tests can run in parallel; `withTestNamespaces` always deletes it again.
public struct TestNamespace: Sendable, Hashable, CustomStringConvertible {
    public let name: String

    /// The path a CNI runtime would pass as `CNI_NETNS`.
    public var path: String { "/run/netns/\(name)" }
    public var description: String { name }

    /// Runs a command inside this namespace and throws unless it exits 0.
    /// Equivalent: `ip netns exec NAME …`.
    @discardableResult
    public func run(_ arguments: [String], stdin: String? = nil) throws -> String {
        try Command.run(["ip", "netns", "exec", name] + arguments, stdin: stdin)
    }

    /// Runs a command inside this namespace and returns its output whatever its exit status.
    @discardableResult
    public func output(_ arguments: [String]) throws -> CommandOutput {
        try Command.output(["ip", "netns", "exec", name] + arguments)
    }

    /// Joins this namespace to `other` with a veth pair, `localName` here and `remoteName` there,
    /// and sets both ends up. Equivalent: `ip link add … type veth peer name … netns …`.
    public func connect(to other: TestNamespace, localName: String, remoteName: String) throws {
        try run(["ip", "link", "add", localName, "type", "veth", "peer", "name", remoteName, "netns", other.name])
        try run(["ip", "link", "set", localName, "up"])
        try other.run(["ip", "link", "set", remoteName, "up"])
    }
}

/// The prefix every test namespace carries, so a leftover one is recognisable as ours.
public let testNamespacePrefix = "strait-t"

private let namespaceCounter = NamespaceCounter()

private final class NamespaceCounter: @unchecked Sendable {
    private let lock = NSLock()
    private var value = 0
    func next() -> Int { lock.withLock { value += 1; return value } }
}

/// Creates `count` fresh network namespaces (loopback up in each), runs `body` with them and
/// deletes them afterwards, also when `body` throws. Every kernel test runs inside these.
public func withTestNamespaces<T>(
    _ count: Int = 1, _ body: ([TestNamespace]) async throws -> T
) async throws -> T {
    try requireRoot()
    _ = leftoversRemoved
    var made: [TestNamespace] = []
    defer { for namespace in made { deleteNamespace(namespace) } }
    for _ in 0..<count {
        let name = "\(testNamespacePrefix)-\(getpid())-\(namespaceCounter.next())"
        try Command.run(["ip", "netns", "add", name])
        let namespace = TestNamespace(name: name)
        made.append(namespace)
        try namespace.run(["ip", "link", "set", "lo", "up"])
    }
    return try await body(made)
}

/// Once per test process: deletes test namespaces left by a test process that was killed before
/// its cleanup ran (their names carry that process's PID, which no longer exists).
private let leftoversRemoved: Void = {
    let names = (try? Command.output(["ip", "netns", "list"]).stdout) ?? ""
    for line in names.split(separator: "\n") {
        let name = String(line.split(separator: " ")[0])
        let parts = name.split(separator: "-")
        guard name.hasPrefix(testNamespacePrefix + "-"), parts.count == 4, let pid = Int32(parts[2]),
              pid != getpid(), kill(pid, 0) != 0, errno == ESRCH else { continue }
        deleteNamespace(TestNamespace(name: name))
    }
}()

/// Kills every process still running inside the namespace (servers a test started there), then deletes it.
private func deleteNamespace(_ namespace: TestNamespace) {
    if let pids = try? Command.output(["ip", "netns", "pids", namespace.name]).stdout {
        for pid in pids.split(whereSeparator: \.isNewline).compactMap({ Int32($0) }) { kill(pid, SIGKILL) }
    }
    _ = try? Command.output(["ip", "netns", "delete", namespace.name])
}

/// Kernel tests need root; on CI (root) they always run, never skip.
public func requireRoot() throws {
    guard geteuid() == 0 else {
        throw CommandFailure(arguments: [], output: nil, reason: "kernel tests need root (run scripts/test as root)")
    }
}

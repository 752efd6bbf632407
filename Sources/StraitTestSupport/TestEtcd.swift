import Foundation
import Synchronization

/// A real etcd for tests (Debian's `etcd-server`, `/usr/bin/etcd`) with a temporary data dir,
/// on 127.0.0.1 with free ports, or inside a test namespace on one of its addresses (nodes in
/// other namespaces reach it over the test topology; the host's loopback is out of their reach).
/// Started with `posix_spawn` (through `Command.start`), stopped by PID: SIGTERM, then SIGKILL
/// after 5 s. `restart()` keeps the data dir and ports; `remove()` also deletes the data dir.
/// A member of a `TestEtcdCluster` is one of these, named and told its peers.
public final class TestEtcd: @unchecked Sendable {
    public static let binary = "/usr/bin/etcd"

    public let host: String
    public let clientPort: Int
    public let peerPort: Int
    public let namespace: TestNamespace?
    public let dataDirectory: String
    /// Client certificate, key and CA when started with TLS.
    public let caFile: String?
    public let certFile: String?
    public let keyFile: String?
    /// The member name, and `--initial-cluster` (every member's `name=peerURL`) for a cluster member.
    public let name: String
    var initialCluster: String?
    private let lock = NSLock()
    private var runningPID: pid_t?

    public var pid: pid_t? { lock.withLock { runningPID } }
    public var scheme: String { caFile == nil ? "http" : "https" }
    /// `http://127.0.0.1:PORT`
    public var clientURL: String { "\(scheme)://\(host):\(clientPort)" }
    /// The `--store` value: `etcd://HOST:PORT`.
    public var storeURL: String { "etcd://\(host):\(clientPort)" }
    public var logFile: String { "\(dataDirectory)/etcd.log" }

    /// `ports` (client, peer) for a cluster member; otherwise 2379 and 2380 in a namespace, free ones on the host.
    init(tls: Bool, namespace: TestNamespace?, host: String, name: String = "strait-test",
         ports: (client: Int, peer: Int)? = nil) throws {
        self.host = host
        self.name = name
        self.namespace = namespace
        dataDirectory = FileManager.default.temporaryDirectory
            .appendingPathComponent("strait-etcd-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: dataDirectory, withIntermediateDirectories: true)
        // A fresh namespace has every port free; on the host, ask the kernel for free ones.
        if let ports {
            (clientPort, peerPort) = ports
        } else {
            clientPort = namespace == nil ? try freeTCPPort() : 2379
            peerPort = namespace == nil ? try freeTCPPort() : 2380
        }
        if tls {
            try Self.makeCertificates(in: dataDirectory, host: host)
            caFile = "\(dataDirectory)/ca.pem"
            certFile = "\(dataDirectory)/client.pem"
            keyFile = "\(dataDirectory)/client.key"
        } else {
            (caFile, certFile, keyFile) = (nil, nil, nil)
        }
    }

    /// A throwaway CA, a server certificate for IP `host` and a client certificate. The server's
    /// also allows client auth: etcd's built-in gateway dials etcd with it.
    private static func makeCertificates(in directory: String, host: String) throws {
        let script = """
            set -e
            cd '\(directory)'
            key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }
            key ca.key; key server.key; key client.key
            openssl req -x509 -new -key ca.key -out ca.pem -days 1 -subj /CN=strait-test-ca
            printf 'subjectAltName=IP:\(host)\\nextendedKeyUsage=serverAuth,clientAuth\\n' > server.ext
            printf 'extendedKeyUsage=clientAuth\\n' > client.ext
            for who in server client; do
                openssl req -new -key $who.key -out $who.csr -subj /CN=strait-test-$who
                openssl x509 -req -in $who.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 1 \\
                    -extfile $who.ext -out $who.pem 2>/dev/null
            done
            """
        try Command.run(["sh", "-c", script])
    }

    /// Starts a new etcd and waits until it answers `/health`.
    public static func start(tls: Bool = false, namespace: TestNamespace? = nil,
                             host: String = "127.0.0.1") async throws -> TestEtcd {
        guard FileManager.default.isExecutableFile(atPath: binary) else {
            throw CommandFailure(arguments: [binary], output: nil, reason: "etcd not found: apt-get install etcd-server")
        }
        let server = try TestEtcd(tls: tls, namespace: namespace, host: host)
        do {
            try await server.launch()
        } catch {
            server.remove()
            throw error
        }
        return server
    }

    /// Runs `body` against a fresh etcd, removed afterwards whether `body` throws or not.
    public static func with<T>(tls: Bool = false, namespace: TestNamespace? = nil, host: String = "127.0.0.1",
                               _ body: (TestEtcd) async throws -> T) async throws -> T {
        let server = try await start(tls: tls, namespace: namespace, host: host)
        defer { server.remove() }
        return try await body(server)
    }

    /// Starts the stopped etcd again on the same data dir and ports.
    public func start() async throws {
        guard pid == nil else { return }
        try await launch()
    }

    /// Stops etcd and starts it again on the same data dir and ports; with `onlyLoopback`, it
    /// listens for clients on 127.0.0.1 alone (in a namespace: reachable from there only), so a test
    /// can change the data while every other client still sees etcd down.
    public func restart(onlyLoopback: Bool = false) async throws {
        stop()
        try await launch(onlyLoopback: onlyLoopback)
    }

    private func launch(onlyLoopback: Bool = false) async throws {
        try spawn(onlyLoopback: onlyLoopback)
        try await waitUntilHealthy(onlyLoopback: onlyLoopback)
    }

    /// `http://HOST:PEERPORT`, where the members of a cluster talk to each other.
    public var peerURL: String { "http://\(host):\(peerPort)" }

    /// The arguments etcd is started with.
    private func arguments(onlyLoopback: Bool) -> [String] {
        let client = onlyLoopback ? "\(scheme)://127.0.0.1:\(clientPort)" : clientURL
        var arguments = [
            Self.binary, "--name", name, "--data-dir", "\(dataDirectory)/data",
            "--listen-client-urls", client, "--advertise-client-urls", client,
            "--listen-peer-urls", peerURL, "--initial-advertise-peer-urls", peerURL,
            "--initial-cluster", initialCluster ?? "\(name)=\(peerURL)",
        ]
        if caFile != nil {
            arguments += [
                "--cert-file", "\(dataDirectory)/server.pem", "--key-file", "\(dataDirectory)/server.key",
                "--trusted-ca-file", "\(dataDirectory)/ca.pem", "--client-cert-auth",
            ]
        }
        return arguments
    }

    /// Starts etcd and returns at once (a cluster member alone never answers `/health`: it needs a quorum).
    func spawn(onlyLoopback: Bool = false) throws {
        let arguments = arguments(onlyLoopback: onlyLoopback)
        // `sh -c exec` and `ip netns exec` both exec, so the PID returned is etcd's own.
        let shell = ["sh", "-c", "exec \(arguments.joined(separator: " ")) >>\(logFile) 2>&1"]
        let command = namespace.map { ["ip", "netns", "exec", $0.name] + shell } ?? shell
        let pid = try Command.start(command, stdin: "")
        lock.withLock { runningPID = pid }
    }

    /// Polls `/health` (every 100 ms, at most 30 s) until etcd answers healthy; throws with the log's
    /// tail when it exits or never does.
    func waitUntilHealthy(onlyLoopback: Bool = false) async throws {
        guard let pid else {
            throw CommandFailure(arguments: [Self.binary], output: nil, reason: "etcd \(name) is not running")
        }
        let client = onlyLoopback ? "\(scheme)://127.0.0.1:\(clientPort)" : clientURL
        var probe = ["curl", "-sf", "--max-time", "2"]
        if let caFile, let certFile, let keyFile {
            probe += ["--cacert", caFile, "--cert", certFile, "--key", keyFile]
        }
        probe.append("\(client)/health")
        let deadline = ContinuousClock.now + .seconds(30)
        while true {
            let output = try namespace.map { try $0.output(probe) } ?? Command.output(probe)
            if output.succeeded, output.stdout.contains("true") { return }
            var status: Int32 = 0
            let exited = waitpid(pid, &status, WNOHANG) == pid
            if exited || ContinuousClock.now >= deadline {
                if exited { lock.withLock { runningPID = nil } } else { stop() }
                let tail = (try? String(contentsOfFile: logFile, encoding: .utf8))?.suffix(2000) ?? ""
                throw CommandFailure(arguments: arguments(onlyLoopback: onlyLoopback), output: nil,
                                     reason: "etcd at \(client) did not start\n\(tail)")
            }
            try await Task.sleep(for: .milliseconds(100))
        }
    }

    /// SIGTERM, then SIGKILL if etcd has not exited after 5 s; reaps it.
    public func stop() {
        guard let pid = lock.withLock({ () -> pid_t? in
            defer { runningPID = nil }
            return runningPID
        }) else { return }
        Command.terminate(pid, grace: .seconds(5))
    }

    /// SIGKILL, as a crash or the OOM killer ends it (no chance to hand over leadership); reaps it.
    public func crash() {
        guard let pid = lock.withLock({ () -> pid_t? in
            defer { runningPID = nil }
            return runningPID
        }) else { return }
        kill(pid, SIGKILL)
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
    }

    /// Stops etcd and deletes its data dir.
    public func remove() {
        stop()
        try? FileManager.default.removeItem(atPath: dataDirectory)
    }
}

/// A TCP port on 127.0.0.1 that nothing listens on right now, from below the kernel's ephemeral
/// range (32768–60999): a port the kernel hands out can be taken as the source port of some
/// outgoing connection while a test server restarts on it. Never the same port twice in one test
/// process: a server that stops and starts again keeps its ports, and while it was down another
/// test running beside it once drew its free peer port (etcd's restart then failed, "bind: address
/// already in use").
public func freeTCPPort() throws -> Int {
    for _ in 0..<200 {
        let port = Int.random(in: 20_000..<32_000)
        guard portsHandedOut.withLock({ $0.insert(port).inserted }) else { continue }
        if try isFreeTCPPort(port) { return port }
    }
    throw CommandFailure(arguments: [], output: nil, reason: "no free TCP port in 20000-31999")
}

/// Every port `freeTCPPort` has returned or found taken, in this process.
private let portsHandedOut = Mutex<Set<Int>>([])

/// Whether a listening socket could bind `port` on 127.0.0.1 now.
private func isFreeTCPPort(_ port: Int) throws -> Bool {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw CommandFailure(arguments: [], output: nil, reason: "socket: errno \(errno)") }
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = UInt16(port).bigEndian
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    return withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    } == 0
}

import Foundation

/// A real `kube-apiserver` (v1.36.2, from `../shared/tools`) for tests, on a real etcd
/// (`TestEtcd`): on 127.0.0.1 with free ports below the ephemeral range, or inside a test
/// namespace on its loopback (where a proxy in that namespace reaches it). Tokens come from a token
/// file (`adminToken` is in `system:masters`); the serving certificate is the one the API server
/// makes itself in its `--cert-dir`, which `kubeconfig` trusts. Started by PID, waited for on
/// `/readyz`, stopped by PID (SIGTERM, then SIGKILL). Equivalent: the commands in
/// `../shared/tools/README.md`.
public final class TestKubeAPIServer: @unchecked Sendable {
    public static let adminToken = "strait-test-admin"
    /// A second user with no RBAC permissions at all (authenticated, then forbidden everything).
    public static let nobodyToken = "strait-test-nobody"
    /// The user `strait-proxy`, with no permissions until a test binds a role to it.
    public static let proxyToken = "strait-test-proxy"

    public let etcd: TestEtcd
    public let namespace: TestNamespace?
    public let port: Int
    public let directory: String
    public let extraArguments: [String]
    private let ownsEtcd: Bool
    private let lock = NSLock()
    private var runningPID: pid_t?

    public var pid: pid_t? { lock.withLock { runningPID } }
    /// `https://127.0.0.1:PORT`
    public var url: String { "https://127.0.0.1:\(port)" }
    /// The serving certificate's CA (the API server's self-made one), PEM.
    public var caFile: String { "\(directory)/certs/apiserver.crt" }
    /// A kubeconfig for the administrator, for tests and `kubectl`.
    public var kubeconfig: String { "\(directory)/kubeconfig" }
    public var logFile: String { "\(directory)/kube-apiserver.log" }

    private init(etcd: TestEtcd, ownsEtcd: Bool, namespace: TestNamespace?, port: Int, directory: String,
                 extraArguments: [String]) {
        self.etcd = etcd
        self.ownsEtcd = ownsEtcd
        self.namespace = namespace
        self.port = port
        self.directory = directory
        self.extraArguments = extraArguments
    }

    // MARK: The binary

    /// The repository root (this file is `Sources/StraitTestSupport/TestKubeAPIServer.swift`).
    public static let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent().path

    /// `$STRAIT_KUBE_APISERVER`, else `.build/kube/kube-apiserver`, decompressed once from
    /// `../shared/tools/kube-apiserver.xz`; nil (and `unavailableReason` set) when neither exists.
    public static var binary: String? { located.path }

    /// The one line that says why the tests against a real API server are skipped; nil when they run.
    public static var unavailableReason: String? { located.reason }

    /// Whether the tests against a real API server can run. When they cannot, the reason is also
    /// written to `.build/kube/skipped`, which `scripts/test` prints in its summary.
    public static var isAvailable: Bool { located.path != nil }

    private static let located: (path: String?, reason: String?) = {
        let directory = repositoryRoot + "/.build/kube"
        let (path, reason) = locateBinary(directory: directory)
        if let reason {
            try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            try? (reason + "\n").write(toFile: directory + "/skipped", atomically: true, encoding: .utf8)
        }
        return (path, reason)
    }()

    private static func locateBinary(directory: String) -> (String?, String?) {
        let environment = ProcessInfo.processInfo.environment["STRAIT_KUBE_APISERVER"] ?? ""
        if !environment.isEmpty {
            guard FileManager.default.isExecutableFile(atPath: environment) else {
                return (nil, "kube-apiserver tests skipped: $STRAIT_KUBE_APISERVER \(environment) is not an executable")
            }
            return (environment, nil)
        }
        let target = directory + "/kube-apiserver"
        if FileManager.default.isExecutableFile(atPath: target) { return (target, nil) }
        let archive = repositoryRoot + "/../shared/tools/kube-apiserver.xz"
        guard FileManager.default.fileExists(atPath: archive) else {
            return (nil, "kube-apiserver tests skipped: no $STRAIT_KUBE_APISERVER and no "
                    + "../shared/tools/kube-apiserver.xz beside the repository")
        }
        // Decompress beside the target and rename, so a concurrent test process never runs half a file.
        let partial = "\(target).partial-\(getpid())"
        let script = "mkdir -p '\(directory)' && xz -dc '\(archive)' > '\(partial)' && chmod +x '\(partial)' "
            + "&& mv '\(partial)' '\(target)'"
        do {
            try Command.run(["sh", "-c", script])
        } catch {
            try? FileManager.default.removeItem(atPath: partial)
            return (nil, "kube-apiserver tests skipped: decompressing \(archive) failed: \(error)")
        }
        return (target, nil)
    }

    // MARK: Starting and stopping

    /// Starts etcd and the API server and waits until `/readyz` says ok. `arguments` are added
    /// to the API server's (for example `--watch-cache=false`).
    public static func start(namespace: TestNamespace? = nil, arguments: [String] = []) async throws -> TestKubeAPIServer {
        guard isAvailable else {
            throw CommandFailure(arguments: [], output: nil, reason: unavailableReason ?? "no kube-apiserver")
        }
        let etcd = try await TestEtcd.start(namespace: namespace)
        let directory = etcd.dataDirectory + "/kube"
        do {
            try makeCredentials(in: directory)
            let port = namespace == nil ? try freeTCPPort() : 6443
            let server = TestKubeAPIServer(etcd: etcd, ownsEtcd: true, namespace: namespace, port: port,
                                           directory: directory, extraArguments: arguments)
            do {
                try await server.launch()
                try server.writeKubeconfig(to: server.kubeconfig, token: adminToken)
            } catch {
                server.stop()
                throw error
            }
            return server
        } catch {
            etcd.remove()
            throw error
        }
    }

    /// Runs `body` against a fresh API server; stops it and etcd afterwards, also when `body` throws.
    public static func with<T>(namespace: TestNamespace? = nil, arguments: [String] = [],
                               _ body: (TestKubeAPIServer) async throws -> T) async throws -> T {
        let server = try await start(namespace: namespace, arguments: arguments)
        defer { server.remove() }
        return try await body(server)
    }

    /// A second API server on the same etcd (an HA control plane's other member), on its own port,
    /// with the same tokens and service-account keys; it has its own serving certificate and
    /// kubeconfig. Stop it with `stop()`; `remove()` of this one leaves the shared etcd alone.
    public func startPeer() async throws -> TestKubeAPIServer {
        let peerDirectory = directory + "-peer-\(UUID().uuidString.prefix(6))"
        try FileManager.default.createDirectory(atPath: peerDirectory, withIntermediateDirectories: true)
        for file in ["sa.key", "sa.pub", "tokens.csv"] {
            try FileManager.default.copyItem(atPath: "\(directory)/\(file)", toPath: "\(peerDirectory)/\(file)")
        }
        let peerPort = namespace == nil ? try freeTCPPort() : port + 1
        let peer = TestKubeAPIServer(etcd: etcd, ownsEtcd: false, namespace: namespace, port: peerPort,
                                     directory: peerDirectory, extraArguments: extraArguments)
        do {
            try await peer.launch()
            try peer.writeKubeconfig(to: peer.kubeconfig, token: Self.adminToken)
        } catch {
            peer.stop()
            throw error
        }
        return peer
    }

    /// Starts the stopped API server again (same port, certificate and etcd data).
    public func start() async throws {
        guard pid == nil else { return }
        try await launch()
    }

    private static func makeCredentials(in directory: String) throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let tokens = """
            \(adminToken),admin,1,"system:masters"
            \(nobodyToken),nobody,2
            \(proxyToken),strait-proxy,3

            """
        try tokens.write(toFile: "\(directory)/tokens.csv", atomically: true, encoding: .utf8)
        try Command.run(["sh", "-c", "cd '\(directory)' && openssl genrsa -out sa.key 2048 2>/dev/null "
                                     + "&& openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null"])
    }

    private func launch() async throws {
        guard let binary = Self.binary else {
            throw CommandFailure(arguments: [], output: nil, reason: Self.unavailableReason ?? "no kube-apiserver")
        }
        let arguments = [
            binary, "--etcd-servers=\(etcd.clientURL)", "--bind-address=127.0.0.1", "--secure-port=\(port)",
            "--advertise-address=127.0.0.1", "--cert-dir=\(directory)/certs",
            "--token-auth-file=\(directory)/tokens.csv", "--authorization-mode=RBAC",
            "--service-account-issuer=https://kubernetes.default.svc",
            "--service-account-key-file=\(directory)/sa.pub",
            "--service-account-signing-key-file=\(directory)/sa.key",
            "--service-cluster-ip-range=10.96.0.0/16",
            // As kubeadm's control plane: node agents (a proxy DaemonSet) run privileged.
            "--allow-privileged=true",
        ] + extraArguments
        // `sh -c exec` and `ip netns exec` both exec, so the PID is the API server's own.
        let shell = ["sh", "-c", "exec \(arguments.joined(separator: " ")) >>\(logFile) 2>&1"]
        let command = namespace.map { ["ip", "netns", "exec", $0.name] + shell } ?? shell
        let pid = try Command.start(command, stdin: "")
        lock.withLock { runningPID = pid }

        // Ready in about 2 s on an idle machine; a loaded 2-core CI run can take far longer.
        let probe = ["curl", "-sk", "--max-time", "5", "-H", "Authorization: Bearer \(Self.adminToken)", "\(url)/readyz"]
        let deadline = ContinuousClock.now + .seconds(180)
        while true {
            let output = try namespace.map { try $0.output(probe) } ?? Command.output(probe)
            if output.succeeded, output.stdout == "ok" { return }
            var status: Int32 = 0
            let exited = waitpid(pid, &status, WNOHANG) == pid
            if exited || ContinuousClock.now >= deadline {
                if exited { lock.withLock { runningPID = nil } } else { stop() }
                let tail = (try? String(contentsOfFile: logFile, encoding: .utf8))?.suffix(3000) ?? ""
                throw CommandFailure(arguments: arguments, output: nil, reason: "kube-apiserver at \(url) did not become ready\n\(tail)")
            }
            try await Task.sleep(for: .milliseconds(200))
        }
    }

    /// SIGTERM, then SIGKILL if the API server has not exited after 10 s; reaps it. etcd keeps running.
    public func stop() {
        guard let pid = lock.withLock({ () -> pid_t? in
            defer { runningPID = nil }
            return runningPID
        }) else { return }
        Command.terminate(pid, grace: .seconds(10))
    }

    /// Stops the API server and (unless this is a peer) etcd, and deletes their files.
    public func remove() {
        stop()
        if ownsEtcd { etcd.remove() } else { try? FileManager.default.removeItem(atPath: directory) }
    }

    // MARK: Using it

    /// Writes a kubeconfig for this server with `token` (trusting its CA), as `kubectl config` would.
    public func writeKubeconfig(to path: String, token: String) throws {
        let text = """
            apiVersion: v1
            kind: Config
            clusters:
            - name: test
              cluster:
                server: \(url)
                certificate-authority: \(caFile)
            users:
            - name: user
              user:
                token: \(token)
            contexts:
            - name: test
              context: {cluster: test, user: user}
            current-context: test

            """
        try text.write(toFile: path, atomically: true, encoding: .utf8)
    }

    /// Runs `kubectl` as the administrator (in this server's namespace, if any) and returns its output;
    /// throws unless it exits 0. Equivalent: `kubectl --kubeconfig K ARGS`.
    @discardableResult
    public func kubectl(_ arguments: [String], stdin: String? = nil) throws -> String {
        let command = ["kubectl", "--kubeconfig", kubeconfig] + arguments
        if let namespace { return try namespace.run(command, stdin: stdin) }
        return try Command.run(command, stdin: stdin)
    }

    /// `kubectl apply -f -` of `manifest`.
    public func apply(_ manifest: String) throws {
        try kubectl(["apply", "-f", "-"], stdin: manifest)
    }

    /// Compacts etcd's history up to its current revision, as the API server's own periodic
    /// compaction does: watches from an older version then get 410 Gone.
    /// Equivalent: `etcdctl compact $(etcdctl endpoint status …revision) --physical`.
    public func compactEtcd() throws -> Int {
        let status = try etcdCall("/v3/kv/range", #"{"key":"AA=="}"#)
        guard let header = status["header"] as? [String: Any], let text = header["revision"] as? String,
              let revision = Int(text) else {
            throw CommandFailure(arguments: [], output: nil, reason: "etcd gave no revision: \(status)")
        }
        _ = try etcdCall("/v3/kv/compaction", #"{"revision":"\#(revision)","physical":true}"#)
        return revision
    }

    private func etcdCall(_ path: String, _ body: String) throws -> [String: Any] {
        let command = ["curl", "-sf", "--max-time", "10", "-X", "POST", "-d", body, etcd.clientURL + path]
        let output = try namespace.map { try $0.run(command) } ?? Command.run(command)
        guard let object = try JSONSerialization.jsonObject(with: Data(output.utf8)) as? [String: Any] else {
            throw CommandFailure(arguments: command, output: nil, reason: "not a JSON object: \(output)")
        }
        return object
    }
}

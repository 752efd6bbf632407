import Foundation
import Testing

@testable import StraitStore

#if canImport(Glibc)
import Glibc
#endif

/// A real etcd (Debian's `etcd-server`, `/usr/bin/etcd`) on 127.0.0.1 with free ports and a
/// temporary data dir. Stopped by PID (SIGTERM, then SIGKILL after 5 s); `remove()` also
/// deletes the data dir. `restart()` keeps the data dir and ports.
final class EtcdServer: @unchecked Sendable {
    static let binary = "/usr/bin/etcd"

    let dataDirectory: URL
    let clientPort: Int
    let peerPort: Int
    /// Client TLS files when the server was started with TLS (`start(tls: true)`).
    let tlsFiles: EtcdTLSFiles?
    private let lock = NSLock()
    private var process: Process?

    var endpoint: EtcdEndpoint { EtcdEndpoint(host: "127.0.0.1", port: clientPort) }
    var pid: Int32? { lock.withLock { process?.processIdentifier } }

    private init(tls: Bool) throws {
        dataDirectory = FileManager.default.temporaryDirectory
            .appendingPathComponent("strait-etcd-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: dataDirectory, withIntermediateDirectories: true)
        clientPort = try freePort()
        peerPort = try freePort()
        if tls {
            try Self.makeCertificates(in: dataDirectory)
            let directory = dataDirectory
            let path = { (name: String) in directory.appendingPathComponent(name).path }
            tlsFiles = EtcdTLSFiles(caFile: path("ca.pem"), certFile: path("client.pem"), keyFile: path("client.key"))
        } else {
            tlsFiles = nil
        }
    }

    /// A throwaway CA, a server certificate for IP 127.0.0.1 and a client certificate.
    /// The server's also allows client auth: etcd's built-in gateway dials etcd with it.
    private static func makeCertificates(in directory: URL) throws {
        let script = """
            set -e
            key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }
            key ca.key; key server.key; key client.key
            openssl req -x509 -new -key ca.key -out ca.pem -days 1 -subj /CN=strait-test-ca
            printf 'subjectAltName=IP:127.0.0.1\\nextendedKeyUsage=serverAuth,clientAuth\\n' > server.ext
            printf 'extendedKeyUsage=clientAuth\\n' > client.ext
            for who in server client; do
                openssl req -new -key $who.key -out $who.csr -subj /CN=strait-test-$who
                openssl x509 -req -in $who.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 1 \\
                    -extfile $who.ext -out $who.pem 2>/dev/null
            done
            """
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", script]
        process.currentDirectoryURL = directory
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw TestFailure("openssl could not make test certificates") }
    }

    /// Starts a new etcd and waits until it answers.
    static func start(tls: Bool = false) async throws -> EtcdServer {
        guard FileManager.default.isExecutableFile(atPath: binary) else {
            throw TestFailure("etcd not found at \(binary): apt-get install etcd-server")
        }
        let server = try EtcdServer(tls: tls)
        do {
            try await server.launch()
        } catch {
            server.remove()
            throw error
        }
        return server
    }

    /// Stops etcd and starts it again on the same data dir and ports.
    func restart() async throws {
        stop()
        try await launch()
    }

    private func launch() async throws {
        let client = "\(tlsFiles == nil ? "http" : "https")://127.0.0.1:\(clientPort)"
        let peer = "http://127.0.0.1:\(peerPort)"
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Self.binary)
        process.arguments = [
            "--name", "strait-test",
            "--data-dir", dataDirectory.appendingPathComponent("data").path,
            "--listen-client-urls", client, "--advertise-client-urls", client,
            "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
            "--initial-cluster", "strait-test=\(peer)",
        ]
        if tlsFiles != nil {
            let path = { (name: String) in self.dataDirectory.appendingPathComponent(name).path }
            process.arguments! += [
                "--cert-file", path("server.pem"), "--key-file", path("server.key"),
                "--trusted-ca-file", path("ca.pem"), "--client-cert-auth",
            ]
        }
        let logURL = dataDirectory.appendingPathComponent("etcd.log")
        if !FileManager.default.fileExists(atPath: logURL.path) {
            _ = FileManager.default.createFile(atPath: logURL.path, contents: nil)
        }
        let log = try FileHandle(forWritingTo: logURL)
        log.seekToEndOfFile()
        process.standardOutput = log
        process.standardError = log
        process.standardInput = FileHandle.nullDevice
        try process.run()
        lock.withLock { self.process = process }

        // Ready when a range call succeeds.
        let probe = try EtcdStore(endpoints: [endpoint], tls: tlsFiles)
        let deadline = ContinuousClock.now + .seconds(30)
        while true {
            do {
                _ = try await probe.get("/strait-test/ready")
                return
            } catch {
                guard process.isRunning, ContinuousClock.now < deadline else {
                    let tail = (try? String(contentsOf: logURL, encoding: .utf8))?.suffix(2000) ?? ""
                    stop()
                    throw TestFailure("etcd on port \(clientPort) did not start: \(error)\n\(tail)")
                }
                try await Task.sleep(for: .milliseconds(50))
            }
        }
    }

    /// SIGTERM, then SIGKILL if etcd has not exited after 5 s.
    func stop() {
        guard let process = lock.withLock({ () -> Process? in
            defer { self.process = nil }
            return self.process
        }) else { return }
        let pid = process.processIdentifier
        guard process.isRunning else { return }
        kill(pid, SIGTERM)
        let deadline = Date().addingTimeInterval(5)
        while process.isRunning, Date() < deadline { usleep(20_000) }
        if process.isRunning {
            kill(pid, SIGKILL)
        }
        process.waitUntilExit()
    }

    /// Stops etcd and deletes its data dir.
    func remove() {
        stop()
        try? FileManager.default.removeItem(at: dataDirectory)
    }

    /// Runs `body` against a fresh etcd, removed afterwards whether `body` throws or not.
    static func with<T>(tls: Bool = false, _ body: (EtcdServer) async throws -> T) async throws -> T {
        let server = try await start(tls: tls)
        do {
            let result = try await body(server)
            server.remove()
            return result
        } catch {
            server.remove()
            throw error
        }
    }

    /// The etcd shared by one run of the contract suite (see `SharedEtcdTrait`).
    @TaskLocal static var shared: EtcdServer?
}

/// Starts one etcd around a whole suite and removes it afterwards, even when tests fail.
/// Tests sharing it use unique key prefixes.
struct SharedEtcdTrait: SuiteTrait, TestScoping {
    func provideScope(
        for test: Test, testCase: Test.Case?, performing function: @Sendable () async throws -> Void
    ) async throws {
        try await EtcdServer.with { server in
            try await EtcdServer.$shared.withValue(server) {
                try await function()
            }
        }
    }
}

extension Trait where Self == SharedEtcdTrait {
    static var sharedEtcd: Self { Self() }
}

struct TestFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// A TCP port on 127.0.0.1 that nothing listens on right now.
func freePort() throws -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw TestFailure("socket: errno \(errno)") }
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = 0
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    let bound = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard bound == 0 else { throw TestFailure("bind: errno \(errno)") }
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let named = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
    }
    guard named == 0 else { throw TestFailure("getsockname: errno \(errno)") }
    return Int(UInt16(bigEndian: address.sin_port))
}

import Foundation
import StraitTestSupport
import Testing

@testable import StraitStore

/// The store tests' view of `TestEtcd` (StraitTestSupport): a real etcd on 127.0.0.1 with free
/// ports and a temporary data dir, as the `EtcdEndpoint` and `EtcdTLSFiles` the store takes.
final class EtcdServer: Sendable {
    let etcd: TestEtcd

    private init(_ etcd: TestEtcd) { self.etcd = etcd }

    var endpoint: EtcdEndpoint { EtcdEndpoint(host: etcd.host, port: etcd.clientPort) }
    var clientPort: Int { etcd.clientPort }
    var pid: Int32? { etcd.pid }
    var tlsFiles: EtcdTLSFiles? {
        etcd.caFile.map { EtcdTLSFiles(caFile: $0, certFile: etcd.certFile, keyFile: etcd.keyFile) }
    }

    static func start(tls: Bool = false) async throws -> EtcdServer {
        EtcdServer(try await TestEtcd.start(tls: tls))
    }

    /// Stops etcd and starts it again on the same data dir and ports.
    func restart() async throws { try await etcd.restart() }
    func stop() { etcd.stop() }
    func remove() { etcd.remove() }

    /// Runs `body` against a fresh etcd, removed afterwards whether `body` throws or not.
    static func with<T>(tls: Bool = false, _ body: (EtcdServer) async throws -> T) async throws -> T {
        try await TestEtcd.with(tls: tls) { etcd in try await body(EtcdServer(etcd)) }
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
func freePort() throws -> Int { try freeTCPPort() }

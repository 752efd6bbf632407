import Foundation
import Testing

@testable import StraitStore

/// What only the etcd store does: fail-over across endpoints and watches that survive an
/// etcd restart. Each test has its own etcd (a restart would disturb others).
struct EtcdStoreTests {
    @Test func failsOverPastADeadEndpoint() async throws {
        try await EtcdServer.with { server in
            let dead = EtcdEndpoint(host: "127.0.0.1", port: try freePort())
            let store = try EtcdStore(endpoints: [dead, server.endpoint])
            let revision = try await store.create("/failover/a", value: "x".bytes)
            #expect(try await store.get("/failover/a")?.modRevision == revision)

            let recorder = await WatchRecorder.start(store.watch(prefix: "/failover/", afterRevision: revision - 1))
            defer { Task { await recorder.stop() } }
            try await recorder.wait("the create") { $0.first?.revision == revision }

            let onlyDead = try EtcdStore(endpoints: [dead])
            let error = await #expect(throws: StoreError.self) { try await onlyDead.get("/failover/a") }
            #expect(error?.code == .unavailable)
        }
    }

    @Test func watchResumesAfterEtcdRestarts() async throws {
        try await EtcdServer.with { server in
            let store = try EtcdStore(endpoints: [server.endpoint])
            let (_, listed) = try await store.list(prefix: "/restart/")
            let recorder = await WatchRecorder.start(store.watch(prefix: "/restart/", afterRevision: listed))
            defer { Task { await recorder.stop() } }

            let before = try await store.put("/restart/a", value: "1".bytes)
            try await recorder.wait("the write before the restart") { $0.last?.revision == before }

            let oldPID = server.pid
            try await server.restart()
            #expect(server.pid != oldPID)

            let after = try await store.put("/restart/b", value: "2".bytes)
            try await store.delete("/restart/a")
            let events = try await recorder.wait("the writes after the restart") { $0.count >= 3 }
            #expect(events.map(\.key) == ["/restart/a", "/restart/b", "/restart/a"])
            #expect(events[1].revision == after)
            #expect(events.map(\.revision) == events.map(\.revision).sorted())
            if case .delete = events[2] {} else { Issue.record("expected a delete, got \(events[2])") }
        }
    }

    @Test func speaksTLSWithClientCertificates() async throws {
        try await EtcdServer.with(tls: true) { server in
            let files = try #require(server.tlsFiles)
            let store = try await openStore(url: "etcd://127.0.0.1:\(server.clientPort)", tls: files)
            let revision = try await store.create("/tls/a", value: "secret".bytes)
            let recorder = await WatchRecorder.start(store.watch(prefix: "/tls/", afterRevision: revision - 1))
            defer { Task { await recorder.stop() } }
            try await recorder.wait("the create over TLS") { $0.first?.revision == revision }

            // Without a client certificate etcd refuses the connection.
            let anonymous = try EtcdStore(endpoints: [server.endpoint], tls: EtcdTLSFiles(caFile: files.caFile))
            await #expect(throws: StoreError.self) { try await anonymous.get("/tls/a") }
        }
    }

    @Test func gatewayErrorsBecomeStoreErrors() {
        let body = Data(#"{"error":"etcdserver: mvcc: required revision has been compacted","code":11}"#.utf8)
        let error = EtcdGateway.failure(.badRequest, body, operation: "compact", key: nil)
        #expect(error.code == .compacted)
        #expect(error.description.contains("required revision has been compacted"))
    }
}

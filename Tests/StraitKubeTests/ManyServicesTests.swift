import Foundation
import StraitKube
import StraitModel
import StraitProxy
import StraitSources
import StraitTestSupport
import Testing

extension KubeAPIServerTests {
    /// 5,000 Services created by parallel POSTs, then the proxy's source
    /// started: its first replace-all holds every one, and the list came in pages (`limit`/`continue`).
    @Test func fiveThousandServicesListedInPages() async throws {
        try await TestKubeAPIServer.with { server in
            let count = 5000
            // Sixteen POSTs in flight at a time, unpaced (kubectl creates one object after another, minutes for 5,000).
            let creator = try server.client(qps: 0)
            defer { Task { await creator.shutdown() } }
            try await withThrowingTaskGroup(of: Void.self) { group in
                for index in 0..<count {
                    if index >= 16 { try await group.next() }
                    group.addTask {
                        let body = #"{"apiVersion":"v1","kind":"Service","metadata":{"name":"svc-\#(index)"},"#
                            + #""spec":{"ports":[{"name":"http","port":80,"protocol":"TCP"}]}}"#
                        try await creator.create("/api/v1/namespaces/default/services", body: Data(body.utf8),
                                                 operation: "create service svc-\(index)")
                    }
                }
                try await group.waitForAll()
            }

            let client = try server.client()
            defer { Task { await client.shutdown() } }
            let recorder = SourceRecorder()
            recorder.record(KubeSource(client: client, nodeName: "node-a", options: testInformerOptions, log: recorder.log))
            defer { recorder.stop() }
            try await eventually("the first replace-all") { !recorder.snapshot.isEmpty }
            guard case .replaceAll(let first) = recorder.snapshot.first else {
                Issue.record("the first event is not a replace-all")
                return
            }
            let names = Set(first.compactMap { object -> String? in
                if case .service(let service) = object { service.metadata.name } else { nil }
            })
            // Every one of them, and the API server's own `kubernetes` Service.
            #expect(names.count == count + 1)
            #expect((0..<count).allSatisfy { names.contains("svc-\($0)") })
            // 5,001 Services in pages of 500: eleven requests, each with `limit`, ten followed by `continue`.
            #expect(recorder.logged.contains { $0.contains("services: listed 5001 in 11 page(s) of up to 500") },
                    "\(recorder.logged.filter { $0.contains("listed") })")
        }
    }
}

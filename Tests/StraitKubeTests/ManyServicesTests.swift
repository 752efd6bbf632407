import Foundation
import StraitKube
import StraitModel
import StraitProxy
import StraitSources
import StraitTestSupport
import Testing

extension KubeAPIServerTests {
    /// 5,000 Services made by four `kubectl create` running side by side, then the proxy's source
    /// started: its first replace-all holds every one, and the list came in pages (`limit`/`continue`).
    @Test func fiveThousandServicesListedInPages() async throws {
        try await TestKubeAPIServer.with { server in
            let count = 5000, files = 4
            let directory = server.directory + "/many"
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            for file in 0..<files {
                let names = stride(from: file, to: count, by: files).map { "svc-\($0)" }
                try names.map { serviceYAML($0) }.joined(separator: "\n---\n")
                    .write(toFile: "\(directory)/services-\(file).yaml", atomically: true, encoding: .utf8)
            }
            // xargs exits non-zero when any kubectl failed.
            try Command.run(["sh", "-c", "ls '\(directory)'/services-*.yaml | xargs -P \(files) -n 1 "
                             + "kubectl --kubeconfig '\(server.kubeconfig)' create -o name -f >/dev/null"])

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

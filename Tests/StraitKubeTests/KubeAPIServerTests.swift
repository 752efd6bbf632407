import Foundation
import NIOConcurrencyHelpers
import StraitKube
import StraitModel
import StraitProxy
import StraitSources
import StraitTestSupport
import Testing

/// Against a real kube-apiserver and etcd started by the test (`TestKubeAPIServer`); skipped, with
/// one line, where the binary is not available. One API server at a time: each takes a core.
@Suite(.serialized, .enabled(if: TestKubeAPIServer.isAvailable,
                             Comment(rawValue: TestKubeAPIServer.unavailableReason ?? "")))
struct KubeAPIServerTests {
    @Test func listsInPagesWithKubeProxysSelector() async throws {
        try await TestKubeAPIServer.with { server in
            var manifest = (0..<300).map { serviceYAML("svc-\($0)") }
            manifest.append(serviceYAML("headless", labels: ["service.kubernetes.io/headless": ""]))
            manifest.append(serviceYAML("other-proxy", labels: ["service.kubernetes.io/service-proxy-name": "foo"]))
            try server.apply(manifest.joined(separator: "\n---\n"))

            let client = try server.client()
            defer { Task { await client.shutdown() } }
            var options = InformerOptions(labelSelector: KubeSource.labelSelector)
            options.pageSize = 7
            let listed = try await Informer<Service>(client: client, resource: .services, options: options).list()
            let names = Set(listed.items.map(\.metadata.name))
            // 300 plus the API server's own `kubernetes` Service; the two labelled ones are not for us.
            #expect(listed.items.count == 301 && names.count == 301)
            #expect(names.contains("svc-0") && names.contains("svc-299") && names.contains("kubernetes"))
            #expect(!names.contains("headless") && !names.contains("other-proxy"))
            #expect(listed.pages == 43, "301 items in pages of 7")
            #expect(listed.items.allSatisfy { $0.spec.clusterIP?.hasPrefix("10.96.") == true })
        }
    }

    @Test func watchSeesCreateChangeDelete() async throws {
        try await TestKubeAPIServer.with { server in
            try server.kubectl(["create", "namespace", "apps"])
            try server.apply("""
                apiVersion: v1
                kind: Node
                metadata: {name: node-a, labels: {topology.kubernetes.io/zone: z1}}
                ---
                apiVersion: v1
                kind: Node
                metadata: {name: node-b}
                """)
            let client = try server.client()
            defer { Task { await client.shutdown() } }
            let recorder = SourceRecorder()
            recorder.record(KubeSource(client: client, nodeName: "node-a", options: testInformerOptions, log: recorder.log))
            defer { recorder.stop() }

            try await eventually("the first replace-all") { !recorder.snapshot.isEmpty }
            guard case .replaceAll(let first) = recorder.snapshot.first else {
                Issue.record("first event is not a replace-all: \(recorder.snapshot)")
                return
            }
            let firstIDs = Set(first.map { ProxyObjectID($0) })
            #expect(firstIDs.contains(ProxyObjectID(kind: .node, namespace: "", name: "node-a")))
            #expect(!firstIDs.contains(ProxyObjectID(kind: .node, namespace: "", name: "node-b")))
            #expect(firstIDs.contains(ProxyObjectID(kind: .service, namespace: "default", name: "kubernetes")))

            try server.apply(serviceYAML("web", namespace: "apps") + """

                ---
                apiVersion: discovery.k8s.io/v1
                kind: EndpointSlice
                metadata:
                  name: web-1
                  namespace: apps
                  labels: {kubernetes.io/service-name: web}
                addressType: IPv4
                ports: [{name: http, port: 8080, protocol: TCP}]
                endpoints:
                - addresses: [10.244.1.2]
                  conditions: {ready: true}
                """)
            let web = ProxyObjectID(kind: .service, namespace: "apps", name: "web")
            let slice = ProxyObjectID(kind: .endpointSlice, namespace: "apps", name: "web-1")
            try await eventually("web and its slice arrive") { recorder.state[web] != nil && recorder.state[slice] != nil }

            try server.kubectl(["-n", "apps", "patch", "endpointslice", "web-1", "--type=json",
                                "-p", #"[{"op":"add","path":"/endpoints/-","value":{"addresses":["10.244.2.2"]}}]"#])
            try await eventually("the slice's second endpoint arrives") {
                guard case .endpointSlice(let current)? = recorder.state[slice] else { return false }
                return current.endpoints?.count == 2
            }
            try server.kubectl(["label", "node", "node-a", "topology.kubernetes.io/zone=z2", "--overwrite"])
            try await eventually("the node's new zone arrives") {
                recorder.state[ProxyObjectID(kind: .node, namespace: "", name: "node-a")]?.metadata
                    .labels["topology.kubernetes.io/zone"] == "z2"
            }
            // Becoming headless-labelled takes a Service out of the proxy's view, as in kube-proxy.
            try server.kubectl(["-n", "apps", "label", "service", "web", "service.kubernetes.io/headless="])
            try await eventually("the relabelled Service leaves") { recorder.state[web] == nil }
            try server.kubectl(["-n", "apps", "delete", "endpointslice", "web-1"])
            try await eventually("the slice's deletion arrives") { recorder.state[slice] == nil }
            #expect(recorder.snapshot.dropFirst().allSatisfy { if case .replaceAll = $0 { false } else { true } })
        }
    }

    @Test func badTokenIsAClearErrorAndNothingIsEmitted() async throws {
        try await TestKubeAPIServer.with { server in
            for (token, expected) in [("not-a-token", "401 Unauthorized"), (TestKubeAPIServer.nobodyToken, "403 Forbidden")] {
                let client = try server.client(token: token)
                let recorder = SourceRecorder()
                recorder.record(KubeSource(client: client, nodeName: "node-a", options: testInformerOptions,
                                           log: recorder.log))
                // Each informer retries; wait for a retry after the first refusal of every kind.
                try await eventually("\(expected) logged for every kind, twice") {
                    let lines = recorder.logged.filter { $0.contains(expected) }
                    return ["services", "endpointslices", "nodes"].allSatisfy { kind in
                        lines.filter { $0.contains("list \(kind):") }.count >= 2
                    }
                }
                #expect(recorder.snapshot.isEmpty, "\(recorder.snapshot)")
                let line = recorder.logged.first { $0.contains(expected) } ?? ""
                #expect(line.contains(token == "not-a-token" ? "credentials were refused" : "lacks RBAC permission"), "\(line)")
                recorder.stop()
                await client.shutdown()
            }
        }
    }

    @Test func apiServerRestartResumesWithOnlyTheDifferences() async throws {
        try await TestKubeAPIServer.with { server in
            try server.apply((0..<20).map { serviceYAML("keep-\($0)") }.joined(separator: "\n---\n"))
            try server.apply(serviceYAML("changed") + "\n---\n" + serviceYAML("removed"))
            let client = try server.client()
            defer { Task { await client.shutdown() } }
            let recorder = SourceRecorder()
            recorder.record(KubeSource(client: client, nodeName: "node-a", options: testInformerOptions, log: recorder.log))
            defer { recorder.stop() }
            try await eventually("the first replace-all with 23 Services") { objectNames(recorder.state, .service).count == 23 }
            let before = recorder.snapshot.count

            // The peer is the control plane's other member: changes go through it while ours is down.
            let peer = try await server.startPeer()
            defer { peer.remove() }
            server.stop()
            try await eventually("the source notices the API server is gone") {
                recorder.logged.count > 0 && recorder.logged.contains { $0.contains("watch services") || $0.contains("did not answer") }
            }
            try peer.kubectl(["label", "service", "changed", "touched=yes"])
            try peer.kubectl(["delete", "service", "removed"])
            try peer.apply(serviceYAML("added"))
            try await server.start()

            try await eventually("the changes made while down arrive") {
                let state = recorder.state
                return state[ProxyObjectID(kind: .service, namespace: "default", name: "changed")]?.metadata.labels["touched"] == "yes"
                    && state[ProxyObjectID(kind: .service, namespace: "default", name: "added")] != nil
                    && state[ProxyObjectID(kind: .service, namespace: "default", name: "removed")] == nil
            }
            let after = recorder.snapshot.dropFirst(before)
            #expect(after.allSatisfy { if case .replaceAll = $0 { false } else { true } }, "no replace-all after the restart")
            let touched = Set(after.compactMap { event -> String? in
                switch event {
                case .upsert(let object): object.metadata.name
                case .delete(let id): id.name
                case .replaceAll: nil
                }
            })
            #expect(!touched.contains { $0.hasPrefix("keep-") }, "unchanged Services are not sent again: \(touched)")
            #expect(touched.isSuperset(of: ["changed", "removed", "added"]))
        }
    }

    @Test func compactedWatchListsAgain() async throws {
        // Without the watch cache, watches read etcd itself, so etcd's compaction is what they meet.
        try await TestKubeAPIServer.with(arguments: ["--watch-cache=false"]) { server in
            try server.apply(serviceYAML("stays") + "\n---\n" + serviceYAML("goes"))
            let client = try server.client()
            defer { Task { await client.shutdown() } }
            let recorder = SourceRecorder()
            recorder.record(KubeSource(client: client, nodeName: "node-a", options: testInformerOptions, log: recorder.log))
            defer { recorder.stop() }
            try await eventually("the first list") { objectNames(recorder.state, .service) == ["kubernetes", "stays", "goes"] }

            let peer = try await server.startPeer()
            defer { peer.remove() }
            server.stop()
            try peer.kubectl(["delete", "service", "goes"])
            try peer.apply(serviceYAML("new"))
            _ = try server.compactEtcd()
            try await server.start()

            try await eventually("the re-list after 410 Gone") {
                recorder.logged.contains { $0.contains("services:") && $0.contains("listing again") }
            }
            try await eventually("the state matches the API server") {
                objectNames(recorder.state, .service) == ["kubernetes", "stays", "new"]
            }
        }
    }
}

extension KubeAPIServerTests {
    @Test func deployManifestsPassServerSideDryRun() async throws {
        try await TestKubeAPIServer.with { server in
            let output = try server.kubectl(["apply", "--dry-run=server", "-f", TestKubeAPIServer.repositoryRoot + "/deploy/"])
            for object in ["serviceaccount/strait", "clusterrole.rbac.authorization.k8s.io/strait-proxy",
                           "clusterrolebinding.rbac.authorization.k8s.io/strait-proxy", "configmap/strait",
                           "clusterrole.rbac.authorization.k8s.io/strait-overlay",
                           "clusterrolebinding.rbac.authorization.k8s.io/strait-overlay",
                           "daemonset.apps/strait"] {
                #expect(output.contains("\(object) created (server dry run)"), "\(output)")
            }
        }
    }

    @Test func rotatedTokenFileIsReadAgain() async throws {
        try await TestKubeAPIServer.with { server in
            let tokenFile = server.directory + "/rotating-token"
            try "not-yet-valid\n".write(toFile: tokenFile, atomically: true, encoding: .utf8)
            let connection = KubeConnection(server: URL(string: server.url)!,
                                            trust: .certificates(Array(try Data(contentsOf: URL(fileURLWithPath: server.caFile)))),
                                            credential: .tokenFile(tokenFile), origin: "test token file")
            let client = try KubeClient(connection: connection, qps: 50, burst: 100)
            defer { Task { await client.shutdown() } }
            let recorder = SourceRecorder()
            recorder.record(KubeSource(client: client, nodeName: "node-a", options: testInformerOptions, log: recorder.log))
            defer { recorder.stop() }
            try await eventually("the old token is refused") { recorder.logged.contains { $0.contains("401") } }
            #expect(recorder.snapshot.isEmpty)
            // The kubelet swaps the file under the running process; no restart, no new client.
            try "\(TestKubeAPIServer.adminToken)\n".write(toFile: tokenFile, atomically: true, encoding: .utf8)
            try await eventually("the first replace-all with the new token") { !recorder.snapshot.isEmpty }
        }
    }
}

extension KubeAPIServerTests {
    /// A client CA the API server trusts, and a client certificate from it in `system:masters`.
    static func makeClientCertificate(in directory: String) throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try Command.run(["sh", "-c", """
            set -e
            cd '\(directory)'
            openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out ca.key 2>/dev/null
            openssl req -x509 -new -key ca.key -out ca.pem -days 1 -subj /CN=strait-client-ca
            openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out client.key 2>/dev/null
            openssl req -new -key client.key -out client.csr -subj '/O=system:masters/CN=cert-admin'
            printf 'extendedKeyUsage=clientAuth\\n' > client.ext
            openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 1 -extfile client.ext \
                -out client.pem 2>/dev/null
            """])
    }

    @Test func clientCertificateInsecureAndWrongCA() async throws {
        let clientCA = NSTemporaryDirectory() + "strait-client-ca-\(UUID().uuidString.prefix(8))"
        try Self.makeClientCertificate(in: clientCA)
        defer { try? FileManager.default.removeItem(atPath: clientCA) }
        try await TestKubeAPIServer.with(arguments: ["--client-ca-file=\(clientCA)/ca.pem"]) { server in
            func nodes(_ kubeconfig: String) async throws -> Int {
                let path = server.directory + "/kubeconfig-\(UUID().uuidString.prefix(6))"
                try kubeconfig.write(toFile: path, atomically: true, encoding: .utf8)
                let client = try KubeClient(connection: KubeConnection.from(KubeConfig.load(file: path), source: path))
                defer { Task { await client.shutdown() } }
                return try await Informer<Node>(client: client, resource: .nodes).list().items.count
            }
            try server.apply("apiVersion: v1\nkind: Node\nmetadata: {name: node-a}\n")
            let certificate = Data(try Data(contentsOf: URL(fileURLWithPath: "\(clientCA)/client.pem"))).base64EncodedString()
            // The client certificate inline, its key from a file; the server checked against its CA.
            #expect(try await nodes("""
                apiVersion: v1
                kind: Config
                clusters: [{name: c, cluster: {server: "\(server.url)", certificate-authority: "\(server.caFile)"}}]
                users: [{name: u, user: {client-certificate-data: \(certificate), client-key: "\(clientCA)/client.key"}}]
                contexts: [{name: x, context: {cluster: c, user: u}}]
                current-context: x
                """) == 1)
            // Certificate checks off: the server's own certificate is not trusted, and yet it answers.
            #expect(try await nodes("""
                apiVersion: v1
                kind: Config
                clusters: [{name: c, cluster: {server: "\(server.url)", insecure-skip-tls-verify: true}}]
                users: [{name: u, user: {token: \(TestKubeAPIServer.adminToken)}}]
                contexts: [{name: x, context: {cluster: c, user: u}}]
                current-context: x
                """) == 1)
            // The wrong CA: the connection is refused, naming the server.
            do {
                _ = try await nodes("""
                    apiVersion: v1
                    kind: Config
                    clusters: [{name: c, cluster: {server: "\(server.url)", certificate-authority: "\(clientCA)/ca.pem"}}]
                    users: [{name: u, user: {token: \(TestKubeAPIServer.adminToken)}}]
                    contexts: [{name: x, context: {cluster: c, user: u}}]
                    current-context: x
                    """)
                Issue.record("a server certificate from an untrusted CA was accepted")
            } catch let error as KubeError {
                #expect(error.code == .transport && error.description.contains(server.url), "\(error)")
            }
        }
    }
}

extension KubeAPIServerTests {
    @Test func serverEndedWatchesResumeWithoutListing() async throws {
        try await TestKubeAPIServer.with { server in
            let client = try server.client()
            defer { Task { await client.shutdown() } }
            var options = testInformerOptions
            options.watchTimeout = 1...1
            let recorder = SourceRecorder()
            let log = KubeLog(debug: { line in recorder.lines.withLockedValue { $0.append(line) } },
                              info: { _ in }, warning: { _ in })
            let informer = Informer<Service>(client: client, resource: .services, options: options, log: log)
            let events = NIOLockedValueBox<[InformerEvent<Service>]>([])
            let task = Task {
                for try await event in informer.events() { events.withLockedValue { $0.append(event) } }
            }
            defer { task.cancel() }
            // timeoutSeconds=1: the API server itself ends each watch; the informer watches on.
            try await eventually("three watches ended by the server") {
                recorder.logged.filter { $0.contains("ended by the server; resuming from") }.count >= 3
            }
            try server.apply(serviceYAML("late"))
            try await eventually("the Service made after the resumed watches") {
                events.withLockedValue { $0.contains { if case .added(let s) = $0 { s.metadata.name == "late" } else { false } } }
            }
            let lists = events.withLockedValue { $0.filter { if case .listed = $0 { true } else { false } }.count }
            #expect(lists == 1, "one list, then only watches")
        }
    }
}

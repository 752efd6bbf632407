import Foundation
import StraitStore
import StraitSystem
import StraitTestSupport
import Testing

/// Security defaults (RELIABILITY.md): the proxy's ports bound as kube-proxy binds them, `strait
/// apply` refusing what the API server refuses, no user string reaching a shell, and etcd's TLS
/// verified both ways. (File modes are tested where the files are written: StraitStoreTests,
/// StraitCNITests, StraitOverlayTests.)
@Suite(.serialized) struct SecurityDefaultsTests {
    /// A temporary directory for one test, removed afterwards.
    func withDirectory<T>(_ body: (String) async throws -> T) async throws -> T {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("strait-security-\(UUID())").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        return try await body(directory)
    }

    static let web = """
        apiVersion: v1
        kind: Service
        metadata: {name: web, namespace: default}
        spec:
          type: NodePort
          clusterIP: 10.96.0.10
          ports: [{name: http, port: 80, targetPort: 8080, nodePort: 30080}]
        ---
        apiVersion: discovery.k8s.io/v1
        kind: EndpointSlice
        metadata: {name: web-1, namespace: default, labels: {kubernetes.io/service-name: web}}
        addressType: IPv4
        endpoints: [{addresses: ["10.244.1.5"]}]
        ports: [{name: http, port: 8080, protocol: TCP}]
        """

    func strait(_ arguments: [String], store: String, stdin: String? = nil) throws -> CommandOutput {
        try Command.output([builtProduct("strait")] + arguments + ["--store", store], stdin: stdin)
    }

    /// What the store holds, as `strait get` prints it.
    func state(_ store: String) throws -> String {
        try ["services", "endpointslices"].map { kind in
            let got = try strait(["get", kind, "-o", "json"], store: store)
            guard got.status == 0 else {
                throw CommandFailure(arguments: ["strait", "get", kind], output: got, reason: "exited \(got.status)")
            }
            return got.stdout
        }.joined(separator: "\n")
    }

    // MARK: strait apply and the cluster ranges

    @Test(arguments: [
        ("clusterIP: 10.96.0.10", "clusterIP: 10.0.0.10",
         "Service default/web: spec.clusterIP: 10.0.0.10 is not in the service range 10.96.0.0/12"),
        ("nodePort: 30080", "nodePort: 8080",
         "Service default/web: spec.ports[0].nodePort: 8080 is not in the node port range 30000-32767"),
        ("type: NodePort", "type: ClusterIP",
         "Service default/web: spec.ports[0].nodePort: may not be used when spec.type is ClusterIP"),
        ("ports: [{name: http, port: 80,", "externalIPs: [127.0.0.1]\n  ports: [{name: http, port: 80,",
         "Service default/web: spec.externalIPs[0]: 127.0.0.1 may not be in the loopback range"),
        ("addresses: [\"10.244.1.5\"]", "addresses: [\"169.254.169.254\"]",
         "EndpointSlice default/web-1: endpoints[0].addresses[0]: 169.254.169.254 may not be in the link-local range"),
    ])
    func applyRefusesAddressesOutsideTheRanges(find: String, replace: String, expected: String) async throws {
        try await withDirectory { dir in
            let store = "\(dir)/store.db"
            let ranges = ["--service-cluster-ip-range", "10.96.0.0/12,fd00:10:96::/112"]
            // A good state first: the refused apply must leave it exactly as it was.
            let first = try strait(["apply", "-f", "-"] + ranges, store: store, stdin: Self.web)
            #expect(first.status == 0, "\(first.stderr)")
            let before = try state(store)

            let bad = Self.web.replacingOccurrences(of: find, with: replace)
            #expect(bad != Self.web)
            let refused = try strait(["apply", "-f", "-"] + ranges, store: store, stdin: bad)
            #expect(refused.status != 0)
            #expect(refused.stderr.contains(expected), "\(refused.stderr)")
            #expect(refused.stderr.contains("nothing was written"), "\(refused.stderr)")
            #expect(refused.stdout.isEmpty)
            #expect(try state(store) == before)
        }
    }

    @Test func applyTakesTheRangesItIsGivenAndRefusesBadRangeFlags() async throws {
        try await withDirectory { dir in
            let store = "\(dir)/store.db"
            let moved = Self.web.replacingOccurrences(of: "nodePort: 30080", with: "nodePort: 20080")
            let narrow = try strait(["apply", "-f", "-"], store: store, stdin: moved)
            #expect(narrow.status != 0 && narrow.stderr.contains("spec.ports[0].nodePort"), "\(narrow.stderr)")
            let wide = try strait(["apply", "-f", "-", "--service-node-port-range", "20000-22767"], store: store, stdin: moved)
            #expect(wide.status == 0, "\(wide.stderr)")
            let flag = try strait(["apply", "-f", "-", "--service-cluster-ip-range", "10.96.0.1/12"], store: store, stdin: moved)
            #expect(flag.status != 0 && flag.stderr.contains("--service-cluster-ip-range"), "\(flag.stderr)")
        }
    }

    // MARK: No user string reaches a shell

    /// Every tool Strait runs goes through `ChildProcess` (posix_spawn with an argument vector; the
    /// audit in RELIABILITY.md lists each call): a shell command in an argument stays a string.
    @Test func childProcessArgumentsAreNeverParsedByAShell() async throws {
        try await withDirectory { dir in
            let marker = "\(dir)/pwned"
            for payload in ["x;touch \(marker)", "$(touch \(marker))", "`touch \(marker)`", "x && touch \(marker)",
                            "x | touch \(marker)", "x\ntouch \(marker)"] {
                let output = try ChildProcess.run(["echo", payload])
                #expect(output.succeeded && output.stdoutText == payload + "\n", "\(output.stdoutText)")
                let stdin = try ChildProcess.run(["cat"], stdin: [Array(payload.utf8)])
                #expect(stdin.stdoutText == payload)
            }
            // A program name is looked up, never interpreted.
            #expect(throws: ChildProcess.SpawnError.self) { try ChildProcess.run(["touch \(marker)"]) }
            #expect(!FileManager.default.fileExists(atPath: marker), "a shell ran a payload")
        }
    }

    @Test func aServiceNamedLikeAShellCommandIsRefusedAndRunsNothing() async throws {
        try await withDirectory { dir in
            let marker = "\(dir)/pwned"
            let store = "\(dir)/store.db"
            let hostile = Self.web.replacingOccurrences(of: "name: web, namespace", with: "name: \"x;touch \(marker)\", namespace")
            let output = try strait(["apply", "-f", "-"], store: store, stdin: hostile)
            #expect(output.status != 0)
            #expect(output.stderr.contains("metadata.name"), "\(output.stderr)")
            #expect(!FileManager.default.fileExists(atPath: marker))
            #expect(try strait(["get", "services", "-o", "json"], store: store).stdout.contains("touch") == false)
        }
    }

    // MARK: Ports 10249 and 10256

    /// kube-proxy's defaults: metrics (and /proxyMode) on 127.0.0.1:10249 only, health on 0.0.0.0:10256.
    @Test func proxyBindsMetricsToLoopbackAndHealthToEveryAddress() async throws {
        try await withTestNamespaces(1) { namespaces in
            let node = namespaces[0]
            try await withDirectory { dir in
                let store = "\(dir)/store.db"
                _ = try strait(["apply", "-f", "-"], store: store, stdin: Self.web)
                let proxy = try Command.start(["ip", "netns", "exec", node.name, builtProduct("strait"), "proxy",
                                               "--store", store, "--hostname-override", "node",
                                               "--conntrack-max-per-core=0"], stdin: "")
                defer { kill(proxy, SIGKILL); Command.waitForExit(proxy) }
                var listening: [String] = []
                for _ in 0..<300 {
                    listening = try node.run(["ss", "-Hltn"]).split(separator: "\n")
                        .map { $0.split(separator: " ", omittingEmptySubsequences: true) }
                        .filter { $0.count >= 4 }.map { String($0[3]) }
                    if listening.contains(where: { $0.hasSuffix(":10249") }) && listening.contains(where: { $0.hasSuffix(":10256") }) {
                        break
                    }
                    try await Task.sleep(for: .milliseconds(100))
                }
                #expect(listening.filter { $0.hasSuffix(":10249") } == ["127.0.0.1:10249"], "\(listening)")
                #expect(listening.filter { $0.hasSuffix(":10256") } == ["0.0.0.0:10256"], "\(listening)")
                reportFigure(suite: "security", "listening sockets of a default strait proxy",
                             listening.filter { $0.hasSuffix(":10249") || $0.hasSuffix(":10256") }.sorted().joined(separator: " "))
            }
        }
    }

    // MARK: etcd TLS

    /// A second CA with a client certificate of its own: what an attacker's or a misconfigured node has.
    func makeForeignCA(in directory: String) throws {
        let script = """
            set -e
            cd '\(directory)'
            openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out other-ca.key 2>/dev/null
            openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out other-client.key 2>/dev/null
            openssl req -x509 -new -key other-ca.key -out other-ca.pem -days 1 -subj /CN=other-ca
            printf 'extendedKeyUsage=clientAuth\\n' > other-client.ext
            openssl req -new -key other-client.key -out other-client.csr -subj /CN=other-client
            openssl x509 -req -in other-client.csr -CA other-ca.pem -CAkey other-ca.key -CAcreateserial -days 1 \\
                -extfile other-client.ext -out other-client.pem 2>/dev/null
            """
        try Command.run(["sh", "-c", script])
    }

    @Test func etcdWithAnotherCAIsRefusedWithAClearError() async throws {
        try await TestEtcd.with(tls: true) { etcd in
            try await withDirectory { dir in
                try makeForeignCA(in: dir)
                let endpoint = EtcdEndpoint(host: etcd.host, port: etcd.clientPort)
                // The right client certificate, but trusting another CA: etcd's certificate is refused.
                let wrongCA = EtcdTLSFiles(caFile: "\(dir)/other-ca.pem", certFile: etcd.certFile, keyFile: etcd.keyFile)
                let store = try EtcdStore(endpoints: [endpoint], tls: wrongCA)
                let error = try await #require(throws: StoreError.self) { try await store.get("/strait/a") }
                #expect(error.description.contains("certificate"), "\(error)")
                #expect(error.description.contains("other-ca.pem"), "\(error)")
                await store.close()

                // The right CA works (the control).
                let right = EtcdTLSFiles(caFile: etcd.caFile, certFile: etcd.certFile, keyFile: etcd.keyFile)
                let good = try EtcdStore(endpoints: [endpoint], tls: right)
                _ = try await good.put("/strait/a", value: Data("1".utf8))
                await good.close()

                // `strait get` with the wrong CA says so and exits non-zero.
                let output = try Command.output([builtProduct("strait"), "get", "services", "--store", etcd.storeURL,
                                                 "--etcd-cafile", "\(dir)/other-ca.pem",
                                                 "--etcd-certfile", etcd.certFile!, "--etcd-keyfile", etcd.keyFile!])
                #expect(output.status != 0)
                #expect(output.stderr.contains("certificate"), "\(output.stderr)")
            }
        }
    }

    @Test func etcdRefusesAClientCertificateItsCADidNotSign() async throws {
        try await TestEtcd.with(tls: true) { etcd in
            try await withDirectory { dir in
                try makeForeignCA(in: dir)
                let endpoint = EtcdEndpoint(host: etcd.host, port: etcd.clientPort)
                let foreign = EtcdTLSFiles(caFile: etcd.caFile, certFile: "\(dir)/other-client.pem",
                                           keyFile: "\(dir)/other-client.key")
                let store = try EtcdStore(endpoints: [endpoint], tls: foreign)
                await #expect(throws: StoreError.self) { try await store.put("/strait/b", value: Data("1".utf8)) }
                await store.close()
                let none = try EtcdStore(endpoints: [endpoint], tls: EtcdTLSFiles(caFile: etcd.caFile))
                await #expect(throws: StoreError.self) { try await none.put("/strait/b", value: Data("1".utf8)) }
                await none.close()
            }
        }
    }
}

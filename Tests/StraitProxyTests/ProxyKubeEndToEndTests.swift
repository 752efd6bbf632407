import Foundation
import StraitTestSupport
import Testing

/// The built `strait proxy --kubeconfig` in a node namespace, fed by a real kube-apiserver that
/// runs in the same namespace (on its loopback: the topology stays closed), with objects made by
/// `kubectl`: packets through the ClusterIP, the network-programming latency from the slice's
/// trigger time, and a deleted Service that stops answering.
@Suite(.serialized, .enabled(if: TestKubeAPIServer.isAvailable,
                             Comment(rawValue: TestKubeAPIServer.unavailableReason ?? "")))
struct ProxyKubeEndToEndTests {
    func eventually(_ check: () throws -> Bool) async throws -> Bool {
        let deadline = ContinuousClock.now + .seconds(120)
        while ContinuousClock.now < deadline {
            if try check() { return true }
            try await Task.sleep(for: .milliseconds(100))
        }
        return false
    }

    @Test func proxyFromTheAPIServerAnswersAndForgets() async throws {
        try await ProxyTopology.with(endpoints: 2) { net in
            try await TestKubeAPIServer.with(namespace: net.node) { server in
                try server.apply("""
                    apiVersion: v1
                    kind: Node
                    metadata: {name: node}
                    """)
                // The proxy runs as its own user with deploy/rbac.yaml's ClusterRole, which must suffice.
                try server.kubectl(["apply", "-f", TestKubeAPIServer.repositoryRoot + "/deploy/rbac.yaml"])
                try server.kubectl(["create", "clusterrolebinding", "strait-proxy-user", "--clusterrole=strait-proxy",
                                    "--user=strait-proxy"])
                let kubeconfig = net.scripts + "/proxy.kubeconfig"
                try server.writeKubeconfig(to: kubeconfig, token: TestKubeAPIServer.proxyToken)
                let proxy = try Command.start([
                    "ip", "netns", "exec", net.node.name, builtProduct("strait"), "proxy", "--kubeconfig", kubeconfig,
                    "--hostname-override", "node", "--cluster-cidr", "10.244.0.0/16",
                    "--metrics-bind-address", "127.0.0.1:10249", "--healthz-bind-address", "127.0.0.1:10256",
                ], stdin: "")
                defer { kill(proxy, SIGKILL); Command.waitForExit(proxy) }
                // The first sync (the API server's own `kubernetes` Service) shows the proxy is up.
                #expect(try await eventually {
                    try net.node.output(["curl", "-sf", "http://127.0.0.1:10249/metrics"]).stdout
                        .contains("kubeproxy_sync_proxy_rules_last_timestamp_seconds")
                })

                let formatter = ISO8601DateFormatter()
                try server.apply(ProxyTopology.webManifest(triggerTime: formatter.string(from: Date())))
                #expect(try await eventually { ProxyTopology.names(try net.probe("tcp", "10.96.0.10", 80, timeout: 0.5)).count == 1 })
                #expect(ProxyTopology.names(try net.probe("tcp", "10.96.0.10", 80, count: 20)) == ["ep0", "ep1"])

                let metrics = try net.node.run(["curl", "-sf", "http://127.0.0.1:10249/metrics"])
                let count = metrics.split(separator: "\n")
                    .first { $0.hasPrefix("kubeproxy_network_programming_duration_seconds_count") }
                    .flatMap { $0.split(separator: " ").last }.flatMap { Double($0) } ?? 0
                #expect(count >= 1, "the slice's trigger time gave a network-programming observation")
                #expect(try net.node.output(["curl", "-sf", "http://127.0.0.1:10256/healthz"]).succeeded)

                try server.kubectl(["delete", "service", "web"])
                #expect(try await eventually { try net.probe("tcp", "10.96.0.10", 80, timeout: 0.5).first?.hasPrefix("ERR") == true })
            }
        }
    }

    @Test func badTokenIsLoggedAndNothingIsProgrammed() async throws {
        try await ProxyTopology.with(endpoints: 1) { net in
            try await TestKubeAPIServer.with(namespace: net.node) { server in
                let kubeconfig = net.scripts + "/bad.kubeconfig", log = net.scripts + "/proxy.log"
                try server.writeKubeconfig(to: kubeconfig, token: "not-a-token")
                let proxy = try Command.start([
                    "ip", "netns", "exec", net.node.name, "sh", "-c",
                    "exec \(builtProduct("strait")) proxy --kubeconfig \(kubeconfig) --hostname-override node "
                        + "--metrics-bind-address 127.0.0.1:10249 --healthz-bind-address 127.0.0.1:10256 2>\(log)",
                ], stdin: "")
                defer { kill(proxy, SIGKILL); Command.waitForExit(proxy) }
                // Every kind is refused, then retried: the error is said more than once.
                #expect(try await eventually {
                    let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
                    return text.components(separatedBy: "HTTP 401 Unauthorized").count > 4
                })
                let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
                #expect(text.contains("the credentials were refused"), "\(text)")
                // The API server's own `kubernetes` Service (10.96.0.1) exists, yet no rule was written for it.
                #expect(!(try net.saved()).contains("10.96.0.1"))
                let metrics = try net.node.run(["curl", "-sf", "http://127.0.0.1:10249/metrics"])
                let counts = metrics.split(separator: "\n")
                    .filter { $0.hasPrefix("kubeproxy_sync_proxy_rules_duration_seconds_count{") }
                #expect(counts.contains { $0.contains("ip_family=\"IPv4\"") }, "\(metrics)")
                #expect(counts.allSatisfy { $0.hasSuffix("} 0") }, "no sync ran in any family: \(counts)")
                // Never synced: not healthy, as the JSON says too.
                for path in ["healthz", "livez"] {
                    let answer = try net.node.output(["curl", "-s", "-w", "\\n%{http_code}", "http://127.0.0.1:10256/\(path)"])
                    #expect(answer.stdout.hasSuffix("\n503") && answer.stdout.contains("\"healthy\":false"),
                            "/\(path): \(answer.stdout)")
                }
            }
        }
    }
}

/// `strait proxy` refuses Kubernetes-source flags it cannot honour, before touching anything.
struct ProxyKubeFlagTests {
    @Test func storeAndKubeconfigTogetherAreRefused() throws {
        let result = try Command.output([builtProduct("strait"), "proxy", "--store", "/nonexistent/x.db",
                                         "--kubeconfig", "/nonexistent/kubeconfig"])
        #expect(!result.succeeded && result.stderr.contains("name two sources"), "\(result.stderr)")
    }

    @Test func execPluginIsRefusedNamingTheUser() throws {
        let path = NSTemporaryDirectory() + "strait-exec-\(getpid()).kubeconfig"
        try """
            apiVersion: v1
            kind: Config
            clusters: [{name: c, cluster: {server: "https://10.0.0.1:6443"}}]
            users: [{name: eks-admin, user: {exec: {command: aws, apiVersion: client.authentication.k8s.io/v1}}}]
            contexts: [{name: x, context: {cluster: c, user: eks-admin}}]
            current-context: x
            """.write(toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let result = try Command.output([builtProduct("strait"), "proxy", "--kubeconfig", path,
                                         "--metrics-bind-address", "", "--healthz-bind-address", ""])
        #expect(!result.succeeded && result.stderr.contains("user eks-admin gets its credentials from the exec plugin aws"),
                "\(result.stderr)")
    }

    @Test func protobufContentTypeIsRefused() throws {
        let result = try Command.output([builtProduct("strait"), "proxy", "--master", "https://127.0.0.1:1",
                                         "--kube-api-content-type", "application/vnd.kubernetes.protobuf"])
        #expect(!result.succeeded && result.stderr.contains("Strait decodes JSON only"), "\(result.stderr)")
    }
}

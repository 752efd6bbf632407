import Foundation
import StraitTestSupport
import Testing

/// kube-proxy's frontend through the built `strait proxy` in a node namespace, fed by the built
/// `strait apply`, asked with curl from the client namespace: health check node ports (on every
/// node address) and the node's eligibility on 10256.
@Suite(.serialized) struct FrontendEndToEndTests {
    static func service(_ name: String, clusterIP: String, nodePort: Int, healthPort: Int) -> String {
        """
        apiVersion: v1
        kind: Service
        metadata: {name: \(name), namespace: shop}
        spec:
          type: LoadBalancer
          clusterIP: \(clusterIP)
          externalTrafficPolicy: Local
          healthCheckNodePort: \(healthPort)
          ports: [{name: http, port: 80, targetPort: 8080, nodePort: \(nodePort), protocol: TCP}]
        """
    }

    static func slice(_ service: String, endpoint: String, nodeName: String) -> String {
        """
        apiVersion: discovery.k8s.io/v1
        kind: EndpointSlice
        metadata:
          name: \(service)-1
          namespace: shop
          labels: {kubernetes.io/service-name: \(service)}
        addressType: IPv4
        ports: [{name: http, port: 8080, protocol: TCP}]
        endpoints:
        - addresses: [\(endpoint)]
          conditions: {ready: true}
          nodeName: \(nodeName)
        """
    }

    func eventually(_ attempts: Int = 100, _ check: () throws -> Bool) async throws -> Bool {
        for _ in 0..<attempts {
            if try check() { return true }
            try await Task.sleep(for: .milliseconds(100))
        }
        return false
    }

    /// `curl` from the client namespace: status code and body, nil when the connection fails.
    func get(_ net: ProxyTopology, _ url: String) throws -> (status: Int, body: String)? {
        let result = try net.client.output(["curl", "-s", "--max-time", "3", "-w", "\n%{http_code}", url])
        guard result.succeeded, let newline = result.stdout.lastIndex(of: "\n") else { return nil }
        return (Int(result.stdout[result.stdout.index(after: newline)...]) ?? 0, String(result.stdout[..<newline]))
    }

    struct Proxy {
        let pid: pid_t
        let logPath: String
        var log: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }
    }

    /// Starts the built proxy in the node namespace with its standard error in a file.
    func startProxy(_ net: ProxyTopology, store: String, extra: [String] = []) throws -> Proxy {
        let logPath = net.scripts + "/proxy.log"
        let arguments = ["ip", "netns", "exec", net.node.name, builtProduct("strait"), "proxy", "--store", store,
                         "--hostname-override=node", "--cluster-cidr=10.244.0.0/16", "--conntrack-max-per-core=0",
                         "--metrics-bind-address=127.0.0.1:10249"] + extra
        let command = arguments.map { "'\($0)'" }.joined(separator: " ")
        return Proxy(pid: try Command.start(["sh", "-c", "exec \(command) 2>'\(logPath)'"], stdin: ""), logPath: logPath)
    }

    func apply(_ net: ProxyTopology, store: String, _ yaml: String) throws {
        let path = net.scripts + "/objects-\(UUID().uuidString).yaml"
        try yaml.write(toFile: path, atomically: true, encoding: .utf8)
        try Command.run([builtProduct("strait"), "apply", "-f", path, "--store", store])
    }

    @Test func healthCheckNodePortsFollowLocalEndpointsAndServices() async throws {
        try await ProxyTopology.with(endpoints: 1) { net in
            let store = net.scripts + "/store.db"
            // Port 31002 is taken in the node namespace before the proxy starts.
            let holder = try Command.start(["ip", "netns", "exec", net.node.name, "python3", "-c", """
                import socket, time
                s = socket.socket(socket.AF_INET6); s.bind(("::", 31002)); s.listen(); time.sleep(600)
                """], stdin: "")
            defer { kill(holder, SIGKILL); Command.waitForExit(holder) }
            let proxy = try startProxy(net, store: store)
            defer { kill(proxy.pid, SIGKILL); Command.waitForExit(proxy.pid) }

            try apply(net, store: store, [
                Self.service("web", clusterIP: "10.96.0.20", nodePort: 30080, healthPort: 31001),
                Self.slice("web", endpoint: "10.244.1.2", nodeName: "node"),
                Self.service("taken", clusterIP: "10.96.0.21", nodePort: 30081, healthPort: 31002),
            ].joined(separator: "\n---\n"))

            let url = "http://\(ProxyTopology.nodeIP):31001/healthz"
            #expect(try await eventually { try get(net, url)?.status == 200 }, "\(proxy.log)")
            let ok = try #require(try get(net, url))
            let json = try #require(try JSONSerialization.jsonObject(with: Data(ok.body.utf8)) as? [String: Any])
            #expect((json["service"] as? [String: String]) == ["namespace": "shop", "name": "web"])
            #expect(json["localEndpoints"] as? Int == 1 && json["serviceProxyHealthy"] as? Bool == true)
            // On every node address, IPv6 too.
            #expect(try get(net, "http://[\(ProxyTopology.nodeIP6)]:31001/")?.status == 200)
            // The taken port is logged, and did not stop the other.
            #expect(try await eventually { proxy.log.contains("health check node port 31002 of shop/taken") }, "\(proxy.log)")

            // The endpoint moves to another node: 503 with no local endpoints.
            try apply(net, store: store, Self.slice("web", endpoint: "10.244.1.2", nodeName: "other"))
            #expect(try await eventually { try get(net, url)?.status == 503 })
            #expect(try get(net, url)?.body.contains("\"localEndpoints\": 0") == true)

            // The Service goes: the port closes.
            try Command.run([builtProduct("strait"), "delete", "service", "web", "-n", "shop", "--store", store])
            #expect(try await eventually { try get(net, url) == nil })
        }
    }

    @Test func aNodeMarkedForDeletionIsNotEligible() async throws {
        try await ProxyTopology.with(endpoints: 1) { net in
            let store = net.scripts + "/store.db"
            let proxy = try startProxy(net, store: store, extra: ["--healthz-bind-address=0.0.0.0:10256"])
            defer { kill(proxy.pid, SIGKILL); Command.waitForExit(proxy.pid) }
            let healthz = "http://\(ProxyTopology.nodeIP):10256/healthz"
            let livez = "http://\(ProxyTopology.nodeIP):10256/livez"
            try apply(net, store: store, Self.node(taint: nil))
            // Healthy from the start (as kube-proxy's), the family's status once its first sync is done.
            func body() throws -> [String: Any]? {
                guard let answer = try get(net, healthz), answer.status == 200 else { return nil }
                return try JSONSerialization.jsonObject(with: Data(answer.body.utf8)) as? [String: Any]
            }
            #expect(try await eventually { (try body()?["status"] as? [String: Any])?["IPv4"] != nil }, "\(proxy.log)")
            let json = try #require(try body())
            #expect(json["nodeEligible"] as? Bool == true && json["healthy"] as? Bool == true)

            try apply(net, store: store, Self.node(taint: "ToBeDeletedByClusterAutoscaler"))
            #expect(try await eventually { try get(net, healthz)?.status == 503 })
            let tainted = try #require(try get(net, healthz))
            #expect(tainted.body.contains("\"nodeEligible\":false") && tainted.body.contains("\"healthy\":true"))
            // /livez leaves the node out.
            #expect(try get(net, livez)?.status == 200)

            try apply(net, store: store, Self.node(taint: "unrelated"))
            #expect(try await eventually { try get(net, healthz)?.status == 200 })
        }
    }

    static func node(taint: String?) -> String {
        var yaml = """
            apiVersion: v1
            kind: Node
            metadata: {name: node}
            spec:
              podCIDR: 10.244.1.0/24
            """
        if let taint { yaml += "\n  taints: [{key: \(taint), value: \"1\", effect: NoSchedule}]" }
        return yaml
    }
}

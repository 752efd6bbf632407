import Foundation
@testable import StraitProxy
import StraitTestSupport
import Testing

@Suite struct ProxyHTTPTests {
    /// GET with curl: the headers come on standard error (`-D /dev/stderr`), the body on standard output.
    func get(_ port: Int, _ path: String) throws -> (status: Int, headers: [String: String], body: String) {
        let result = try Command.output(["curl", "-s", "-D", "/dev/stderr", "--max-time", "5",
                                         "http://127.0.0.1:\(port)\(path)"])
        let out = result.stdout
        let headerText = result.stderr
        var lines = headerText.split(separator: "\r\n")
        let status = Int(lines.removeFirst().split(separator: " ")[1])!
        var headers: [String: String] = [:]
        for line in lines {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        return (status, headers, out)
    }

    @Test func metricsServer() async throws {
        let metrics = ProxyMetrics()
        metrics.observeSync(seconds: 0.003, full: true)
        let server = ProxyHTTPServer(name: "metrics", address: BindAddress(host: "127.0.0.1", port: 0),
                                     responder: ProxyEndpoints.metrics(mode: .iptables, metrics: metrics))
        let port = try await server.start()
        let task = Task { try await server.run() }
        defer { task.cancel() }

        let mode = try get(port, "/proxyMode")
        #expect(mode.status == 200)
        #expect(mode.body == "iptables")
        #expect(mode.headers["content-type"] == "text/plain; charset=utf-8")
        #expect(mode.headers["x-content-type-options"] == "nosniff")

        let text = try get(port, "/metrics")
        #expect(text.status == 200)
        for name in ["kubeproxy_sync_proxy_rules_duration_seconds_bucket{ip_family=\"IPv4\",le=\"0.004\"} 1",
                     "kubeproxy_network_programming_duration_seconds_bucket",
                     "kubeproxy_sync_proxy_rules_last_timestamp_seconds",
                     "kubeproxy_sync_proxy_rules_last_queued_timestamp_seconds",
                     "kubeproxy_sync_proxy_rules_service_changes_total",
                     "kubeproxy_sync_proxy_rules_service_changes_pending",
                     "kubeproxy_sync_proxy_rules_endpoint_changes_total",
                     "kubeproxy_sync_proxy_rules_endpoint_changes_pending",
                     "kubeproxy_sync_full_proxy_rules_duration_seconds_count{ip_family=\"IPv4\"} 1"] {
            #expect(text.body.contains(name), "\(name)")
        }
        #expect(text.body.components(separatedBy: "kubeproxy_sync_proxy_rules_duration_seconds_bucket").count == 17)

        let healthz = try get(port, "/healthz")
        #expect(healthz.status == 200 && healthz.body == "ok")
        #expect(try get(port, "/nothing").status == 404)
    }

    @Test func healthServer200And503() async throws {
        let health = ProxyHealth(syncPeriod: 0.1)
        let server = ProxyHTTPServer(name: "healthz", address: BindAddress(host: "127.0.0.1", port: 0),
                                     responder: ProxyEndpoints.health(health, metrics: ProxyMetrics()))
        let port = try await server.start()
        let task = Task { try await server.run() }
        defer { task.cancel() }

        health.updated()
        let ok = try get(port, "/healthz")
        #expect(ok.status == 200)
        #expect(ok.headers["content-type"] == "application/json")
        let json = try #require(try JSONSerialization.jsonObject(with: Data(ok.body.utf8)) as? [String: Any])
        #expect(json["lastUpdated"] is String && json["currentTime"] is String)
        #expect(json["nodeEligible"] as? Bool == true && json["healthy"] as? Bool == true)
        let live = try get(port, "/livez")
        #expect(live.status == 200 && !live.body.contains("nodeEligible"))

        health.queued(at: Date().addingTimeInterval(-1))
        let stale = try get(port, "/healthz")
        #expect(stale.status == 503)
        #expect(stale.body.contains("\"healthy\":false"))
        #expect(try get(port, "/livez").status == 503)
        health.updated()
        #expect(try get(port, "/healthz").status == 200)
    }

    @Test func bindFailureNamesTheAddress() async throws {
        let first = ProxyHTTPServer(name: "metrics", address: BindAddress(host: "127.0.0.1", port: 0)) { _, _ in .notFound }
        let port = try await first.start()
        defer { Task { await first.stop() } }
        let second = ProxyHTTPServer(name: "metrics", address: BindAddress(host: "127.0.0.1", port: port)) { _, _ in .notFound }
        do {
            try await second.start()
            Issue.record("second bind succeeded")
        } catch let error as BindError {
            #expect(error.description.contains("127.0.0.1:\(port)"))
        }
        let foreign = ProxyHTTPServer(name: "healthz", address: BindAddress(host: "192.0.2.77", port: 10256)) { _, _ in .notFound }
        await #expect(throws: BindError.self) { try await foreign.start() }
    }

    @Test func timesAsGoMarshalsThem() {
        #expect(ProxyHealth.rfc3339(Date(timeIntervalSince1970: 1_714_564_800.5)) == "2024-05-01T12:00:00.5Z")
        #expect(ProxyHealth.rfc3339(Date(timeIntervalSince1970: 1_714_564_800)) == "2024-05-01T12:00:00Z")
        #expect(ProxyHealth.rfc3339(nil) == "0001-01-01T00:00:00Z")
    }
}

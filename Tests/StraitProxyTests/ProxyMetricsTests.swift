import Foundation
import StraitModel
@testable import StraitProxy
import StraitTestSupport
import Testing

/// `/metrics` scraped over HTTP and read as Prometheus text, against kube-proxy v1.36's declarations
/// (`pkg/proxy/metrics/metrics.go`, iptables mode): names, types, help with its `[ALPHA]` mark,
/// label names, and bucket bounds as Go's client prints them.
@Suite struct ProxyMetricsTests {
    typealias F = Fixture

    struct Declared {
        var type: String
        var help: String
        var labels: [String]
    }

    /// kube-proxy's iptables-mode metrics (less the two nfacct packet counters, which read the kernel).
    static let kubeProxy: [String: Declared] = [
        "kubeproxy_sync_proxy_rules_duration_seconds":
            Declared(type: "histogram", help: "SyncProxyRules latency in seconds", labels: ["ip_family"]),
        "kubeproxy_sync_full_proxy_rules_duration_seconds":
            Declared(type: "histogram", help: "SyncProxyRules latency in seconds for full resyncs", labels: ["ip_family"]),
        "kubeproxy_sync_partial_proxy_rules_duration_seconds":
            Declared(type: "histogram", help: "SyncProxyRules latency in seconds for partial resyncs", labels: ["ip_family"]),
        "kubeproxy_network_programming_duration_seconds":
            Declared(type: "histogram", help: "In Cluster Network Programming Latency in seconds", labels: ["ip_family"]),
        "kubeproxy_sync_proxy_rules_last_timestamp_seconds":
            Declared(type: "gauge", help: "The last time proxy rules were successfully synced", labels: ["ip_family"]),
        "kubeproxy_sync_proxy_rules_last_queued_timestamp_seconds":
            Declared(type: "gauge", help: "The last time a sync of proxy rules was queued", labels: ["ip_family"]),
        "kubeproxy_sync_proxy_rules_endpoint_changes_pending":
            Declared(type: "gauge", help: "Pending proxy rules Endpoint changes", labels: []),
        "kubeproxy_sync_proxy_rules_endpoint_changes_total":
            Declared(type: "counter", help: "Cumulative proxy rules Endpoint changes", labels: []),
        "kubeproxy_sync_proxy_rules_service_changes_pending":
            Declared(type: "gauge", help: "Pending proxy rules Service changes", labels: []),
        "kubeproxy_sync_proxy_rules_service_changes_total":
            Declared(type: "counter", help: "Cumulative proxy rules Service changes", labels: []),
        "kubeproxy_sync_proxy_rules_iptables_restore_failures_total":
            Declared(type: "counter", help: "Cumulative proxy iptables restore failures", labels: ["ip_family"]),
        "kubeproxy_sync_proxy_rules_iptables_partial_restore_failures_total":
            Declared(type: "counter", help: "Cumulative proxy iptables partial restore failures", labels: ["ip_family"]),
        "kubeproxy_sync_proxy_rules_iptables_total":
            Declared(type: "gauge", help: "Total number of iptables rules owned by kube-proxy", labels: ["ip_family", "table"]),
        "kubeproxy_sync_proxy_rules_iptables_last":
            Declared(type: "gauge", help: "Number of iptables rules written by kube-proxy in last sync",
                     labels: ["ip_family", "table"]),
        "kubeproxy_sync_proxy_rules_no_local_endpoints_total":
            Declared(type: "gauge", help: "Number of services with a Local traffic policy and no endpoints",
                     labels: ["ip_family", "traffic_policy"]),
        "kubeproxy_proxy_healthz_total": Declared(type: "counter", help: "Cumulative proxy healthz HTTP status", labels: ["code"]),
        "kubeproxy_proxy_livez_total": Declared(type: "counter", help: "Cumulative proxy livez HTTP status", labels: ["code"]),
        "kubeproxy_conntrack_reconciler_sync_duration_seconds":
            Declared(type: "histogram", help: "ReconcileConntrackFlowsLatency latency in seconds", labels: ["ip_family"]),
        "kubeproxy_conntrack_reconciler_deleted_entries_total":
            Declared(type: "counter", help: "Cumulative conntrack flows deleted by conntrack reconciler", labels: ["ip_family"]),
    ]

    /// `ExponentialBuckets(0.001, 2, 15)` as Go prints the bounds.
    static let syncBounds = ["0.001", "0.002", "0.004", "0.008", "0.016", "0.032", "0.064", "0.128", "0.256", "0.512",
                             "1.024", "2.048", "4.096", "8.192", "16.384", "+Inf"]
    /// `MergeBuckets(LinearBuckets(0.25, 0.25, 2), LinearBuckets(1, 1, 59), LinearBuckets(60, 5, 12),
    /// LinearBuckets(120, 30, 7))`: `MergeBuckets` starts from a 0 bucket.
    static let networkProgrammingBounds: [String] = {
        let seconds: [Int] = Array(1...59) + Array(stride(from: 60, through: 115, by: 5))
            + Array(stride(from: 120, through: 300, by: 30))
        return ["0", "0.25", "0.5"] + seconds.map { String($0) } + ["+Inf"]
    }()

    /// One sample line: `name{label="value",…} value`.
    struct Sample {
        var name: String
        var labels: [String: String]
        var value: String
    }

    /// A scrape read as the Prometheus text format: families' TYPE and HELP, and the samples in order.
    struct Scrape {
        var types: [String: String] = [:]
        var help: [String: String] = [:]
        var samples: [Sample] = []

        init(_ text: String) throws {
            for line in text.split(separator: "\n") {
                if line.hasPrefix("# TYPE ") || line.hasPrefix("# HELP ") {
                    let fields = line.dropFirst(7).split(separator: " ", maxSplits: 1).map(String.init)
                    if line.hasPrefix("# TYPE ") { types[fields[0]] = fields[1] } else { help[fields[0]] = fields[1] }
                    continue
                }
                var labels: [String: String] = [:]
                let name: Substring, rest: Substring
                if let brace = line.firstIndex(of: "{") {
                    let close = try #require(line.lastIndex(of: "}"))
                    name = line[..<brace]
                    for pair in line[line.index(after: brace)..<close].split(separator: ",") {
                        let parts = pair.split(separator: "=", maxSplits: 1)
                        labels[String(parts[0])] = String(parts[1].dropFirst().dropLast())
                    }
                    rest = line[line.index(after: close)...]
                } else {
                    let space = try #require(line.firstIndex(of: " "))
                    name = line[..<space]
                    rest = line[space...]
                }
                samples.append(Sample(name: String(name), labels: labels, value: rest.trimmingCharacters(in: .whitespaces)))
            }
        }

        /// The samples of a family: its own name, or `_bucket`, `_sum`, `_count` of a histogram.
        func samples(of family: String) -> [Sample] {
            samples.filter { [family, family + "_bucket", family + "_sum", family + "_count"].contains($0.name) }
        }

        func bounds(_ family: String, _ labels: [String: String]) -> [String] {
            samples.filter { sample in
                sample.name == family + "_bucket" && labels.allSatisfy { sample.labels[$0.key] == $0.value }
            }.compactMap { $0.labels["le"] }
        }
    }

    /// Serves `metrics` on a port of its own and scrapes it once.
    func scrape(_ metrics: ProxyMetrics) async throws -> Scrape {
        let server = ProxyHTTPServer(name: "metrics", address: BindAddress(host: "127.0.0.1", port: 0),
                                     responder: ProxyEndpoints.metrics(mode: metrics.mode, metrics: metrics))
        let port = try await server.start()
        defer { Task { await server.stop() } }
        let result = try Command.output(["curl", "-sf", "--max-time", "5", "http://127.0.0.1:\(port)/metrics"])
        #expect(result.succeeded, "\(result.stderr)")
        return try Scrape(result.stdout)
    }

    /// A dual-stack proxy's metrics after one sync, a failed restore and a health probe each.
    func exercised() -> ProxyMetrics {
        let metrics = ProxyMetrics(mode: .iptables, families: [.ipv4, .ipv6])
        metrics.changesQueued(services: 1, endpoints: 2)
        metrics.observeSync(seconds: 0.003, full: true)
        metrics.observeNetworkProgramming(seconds: 0.7)
        metrics.setLastSync(Date())
        metrics.setLastQueued(Date())
        metrics.family(.ipv6)?.iptablesRestoreFailed(partial: true)
        metrics.family(.ipv4)?.conntrackReconciled(seconds: 0.002, deleted: 3)
        metrics.countHealthz(code: 200)
        metrics.countLivez(code: 503)
        return metrics
    }

    @Test func namesTypesHelpAndLabelsAreKubeProxys() async throws {
        let scrape = try await scrape(exercised())
        for (name, declared) in Self.kubeProxy {
            #expect(scrape.types[name] == declared.type, "\(name)")
            #expect(scrape.help[name] == "[ALPHA] " + declared.help, "\(name)")
            let samples = scrape.samples(of: name)
            #expect(!samples.isEmpty, "\(name) has no samples")
            for sample in samples {
                #expect(sample.labels.keys.filter { $0 != "le" }.sorted() == declared.labels, "\(name): \(sample.labels)")
            }
            if declared.labels.contains("ip_family") {
                #expect(Set(samples.compactMap { $0.labels["ip_family"] }) == ["IPv4", "IPv6"], "\(name)")
            }
        }
        // Nothing invented under kube-proxy's prefix; Strait's own metrics carry `strait_`.
        for name in scrape.types.keys {
            #expect(Self.kubeProxy[name] != nil || name.hasPrefix("strait_"), "\(name) is neither kube-proxy's nor strait_")
        }
        #expect(scrape.types["strait_service_table_build_duration_seconds"] == "histogram")
        #expect(scrape.types["strait_sync_proxy_rules_failures_total"] == "counter")
    }

    @Test func valuesLandUnderTheirLabels() async throws {
        let scrape = try await scrape(exercised())
        func value(_ name: String, _ labels: [String: String] = [:]) -> Double? {
            scrape.samples.first { $0.name == name && $0.labels == labels }.flatMap { Double($0.value) }
        }
        #expect(value("kubeproxy_sync_proxy_rules_iptables_restore_failures_total", ["ip_family": "IPv6"]) == 1)
        #expect(value("kubeproxy_sync_proxy_rules_iptables_restore_failures_total", ["ip_family": "IPv4"]) == 0)
        #expect(value("kubeproxy_sync_proxy_rules_iptables_partial_restore_failures_total", ["ip_family": "IPv6"]) == 1)
        #expect(value("kubeproxy_conntrack_reconciler_deleted_entries_total", ["ip_family": "IPv4"]) == 3)
        #expect(value("kubeproxy_proxy_healthz_total", ["code": "200"]) == 1)
        #expect(value("kubeproxy_proxy_livez_total", ["code": "503"]) == 1)
        #expect(value("kubeproxy_sync_proxy_rules_endpoint_changes_total") == 2)
        #expect(value("kubeproxy_sync_full_proxy_rules_duration_seconds_count", ["ip_family": "IPv4"]) == 1)
        #expect(value("kubeproxy_sync_partial_proxy_rules_duration_seconds_count", ["ip_family": "IPv4"]) == 0)
        // 3 ms is counted from the 4 ms bucket up.
        #expect(value("kubeproxy_sync_proxy_rules_duration_seconds_bucket", ["ip_family": "IPv4", "le": "0.002"]) == 0)
        #expect(value("kubeproxy_sync_proxy_rules_duration_seconds_bucket", ["ip_family": "IPv4", "le": "0.004"]) == 1)
    }

    @Test func bucketBoundsAreKubeProxys() async throws {
        let scrape = try await scrape(exercised())
        for family in ["IPv4", "IPv6"] {
            for name in ["kubeproxy_sync_proxy_rules_duration_seconds", "kubeproxy_sync_full_proxy_rules_duration_seconds",
                         "kubeproxy_sync_partial_proxy_rules_duration_seconds",
                         "kubeproxy_conntrack_reconciler_sync_duration_seconds"] {
                #expect(scrape.bounds(name, ["ip_family": family]) == Self.syncBounds, "\(name) \(family)")
            }
            #expect(scrape.bounds("kubeproxy_network_programming_duration_seconds", ["ip_family": family])
                    == Self.networkProgrammingBounds)
        }
        #expect(Self.networkProgrammingBounds.count == 82)
    }

    /// The no-local-endpoints gauge counts the plans that drop: internal for an `internalTrafficPolicy:
    /// Local` port whose endpoints are all on other nodes, external for `externalTrafficPolicy: Local`.
    @Test func noLocalEndpointsFollowThePlans() async throws {
        let internalLocal = F.service("internal", clusterIP: "10.96.0.11") { $0.spec.internalTrafficPolicy = .local }
        let externalLocal = F.service("external", clusterIP: "10.96.0.12", type: .nodePort,
                                      ports: [ServicePort(name: "http", protocol: .tcp, port: 80, nodePort: 30080)]) {
            $0.spec.externalTrafficPolicy = .local
        }
        let served = F.service("served", clusterIP: "10.96.0.13") { $0.spec.internalTrafficPolicy = .local }
        let slices = [
            F.slice("internal-1", service: "internal", endpoints: [F.endpoint("10.244.2.2", node: "node-b")]),
            F.slice("external-1", service: "external", endpoints: [F.endpoint("10.244.2.3", node: "node-b")]),
            F.slice("served-1", service: "served", endpoints: [F.endpoint("10.244.1.4", node: "node-a")]),
        ]
        let table = F.build([internalLocal, externalLocal, served], slices).table
        let metrics = ProxyMetrics(mode: .iptables, families: [.ipv4, .ipv6])
        metrics.setNoLocalEndpoints(table)
        let scrape = try await scrape(metrics)
        func value(_ family: String, _ policy: String) -> String? {
            scrape.samples.first {
                $0.name == "kubeproxy_sync_proxy_rules_no_local_endpoints_total"
                    && $0.labels == ["ip_family": family, "traffic_policy": policy]
            }?.value
        }
        #expect(value("IPv4", "internal").flatMap(Double.init) == 1)
        #expect(value("IPv4", "external").flatMap(Double.init) == 1)
        #expect(value("IPv6", "internal").flatMap(Double.init) == 0)
        #expect(value("IPv6", "external").flatMap(Double.init) == 0)
    }
}

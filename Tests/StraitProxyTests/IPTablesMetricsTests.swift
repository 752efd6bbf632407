import StraitModel
import StraitProxy
import StraitProxyIPTables
import StraitTestSupport
import Testing

/// kube-proxy's rule-count metrics of the iptables mode, checked against what `iptables-save`
/// shows in a node namespace after full and partial syncs.
@Suite(.serialized) struct IPTablesMetricsTests {
    typealias E2E = ProxyEndToEndTests

    /// The rules in Strait's own chains of `table` (`-A KUBE-…`; the jumps from built-in chains
    /// aside, as kube-proxy counts them).
    static func ruleCount(_ saved: String, table: String) -> Int {
        var current = ""
        var count = 0
        for line in saved.split(separator: "\n") {
            if line.hasPrefix("*") { current = String(line.dropFirst()) }
            if current == table && line.hasPrefix("-A KUBE-") { count += 1 }
        }
        return count
    }

    static func gauge(_ metrics: ProxyMetrics, _ name: String, table: String) -> Double? {
        let prefix = "kubeproxy_sync_proxy_rules_iptables_\(name){ip_family=\"IPv4\",table=\"\(table)\"} "
        return metrics.render().split(separator: "\n").first { $0.hasPrefix(prefix) }
            .flatMap { Double($0.dropFirst(prefix.count)) }
    }

    @Test func ruleCountsMatchTheKernelAfterFullAndPartialSyncs() async throws {
        try await ProxyTopology.with(endpoints: 3) { net in
            let metrics = ProxyMetrics(mode: .iptables, families: [.ipv4])
            let backend = IPTablesBackend(
                options: IPTablesRuleOptions(family: .ipv4, proxy: ProxyTopology.options()),
                tools: IPTablesRestore(flavor: .hostDefault(), family: .ipv4, namespace: net.node.name),
                metrics: metrics.family(.ipv4))
            let other = ServicePortName(namespace: "default", name: "other", port: "", protocol: .tcp)
            let otherEntry = E2E.entry([net.endpoint(2)], name: other, port: 81, clusterIPs: [IPAddress("10.96.0.11")!])
            let first = ServiceTable([E2E.entry([net.endpoint(0), net.endpoint(1)]), otherEntry])
            try await backend.sync(from: nil, to: first)
            var saved = try net.saved()
            for table in ["nat", "filter"] {
                #expect(Self.gauge(metrics, "total", table: table) == Double(Self.ruleCount(saved, table: table)), "\(table)")
                #expect(Self.gauge(metrics, "last", table: table) == Self.gauge(metrics, "total", table: table), "\(table)")
            }

            // An endpoint change rewrites one service's chains: the total follows the kernel, the
            // last sync wrote fewer rules than that.
            let second = ServiceTable([E2E.entry([net.endpoint(0)]), otherEntry])
            try await backend.sync(from: first, to: second)
            saved = try net.saved()
            let natTotal = try #require(Self.gauge(metrics, "total", table: "nat"))
            #expect(natTotal == Double(Self.ruleCount(saved, table: "nat")))
            #expect(Self.gauge(metrics, "total", table: "filter") == Double(Self.ruleCount(saved, table: "filter")))
            let natLast = try #require(Self.gauge(metrics, "last", table: "nat"))
            #expect(natLast > 0 && natLast < natTotal)
            #expect(Self.gauge(metrics, "last", table: "filter") == 0)
        }
    }
}

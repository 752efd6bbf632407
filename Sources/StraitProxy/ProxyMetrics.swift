import CoreMetrics
import Foundation
import Prometheus
import StraitModel

/// kube-proxy's metrics (`pkg/proxy/metrics/metrics.go`): the same names, help, types, labels and
/// buckets, as swift-metrics handles on one Prometheus registry that `/metrics` renders.
///
/// Strait programs every family in one sync (kube-proxy runs a proxier per family): what a sync
/// measures as a whole (its duration, its timestamps, network programming latency) is recorded
/// under each family's `ip_family` label; what differs by family (no-local-endpoint counts,
/// restore failures, rule counts, conntrack cleanup) under its own. Strait-only metrics carry a
/// `strait_` prefix.
public final class ProxyMetrics: Sendable {
    /// 1 ms, 2 ms, … 16.384 s: `ExponentialBuckets(0.001, 2, 15)`.
    public static let syncDurationBuckets: [Duration] = (0..<15).map { .milliseconds(1 << $0) }
    /// 0, 0.25 s, 0.5 s, 1…59 s by 1, 60…115 s by 5, 120…300 s by 30: kube-proxy's `MergeBuckets`
    /// of four linear ranges, with the 0 bucket that `MergeBuckets` puts first.
    public static let networkProgrammingBuckets: [Duration] =
        [.zero, .milliseconds(250), .milliseconds(500)] + (1...59).map { .seconds($0) }
        + (0..<12).map { .seconds(60 + 5 * $0) } + (0..<7).map { .seconds(120 + 30 * $0) }
    /// kube-proxy's label value of a family (`v1.IPFamily`).
    public static func label(_ family: IPFamily) -> String { family == .ipv6 ? "IPv6" : "IPv4" }

    /// The registry `/metrics` renders.
    public let registry: PrometheusCollectorRegistry
    /// The families the proxy programs, IPv4 first.
    public let families: [IPFamily]
    public let mode: ProxyMode
    private let perFamily: [Family]

    private let serviceChangesTotal: CoreMetrics.Counter
    private let serviceChangesPending: Meter
    private let endpointChangesTotal: CoreMetrics.Counter
    private let endpointChangesPending: Meter
    private let syncFailures: CoreMetrics.Counter
    private let tableBuild: CoreMetrics.Timer

    public init(mode: ProxyMode = .iptables, families: [IPFamily] = [.ipv4]) {
        self.mode = mode
        self.families = families
        let registry = PrometheusCollectorRegistry()
        self.registry = registry
        let metrics = Handles(registry: registry)
        serviceChangesTotal = metrics.counter(Name.serviceChangesTotal)
        serviceChangesPending = metrics.gauge(Name.serviceChangesPending)
        endpointChangesTotal = metrics.counter(Name.endpointChangesTotal)
        endpointChangesPending = metrics.gauge(Name.endpointChangesPending)
        syncFailures = metrics.counter(Name.syncFailures)
        tableBuild = metrics.histogram(Name.tableBuild, buckets: Self.syncDurationBuckets)
        perFamily = families.map { Family(family: $0, mode: mode, metrics: metrics) }
    }

    /// The handles of one family; nil for a family the proxy does not program.
    public func family(_ family: IPFamily) -> Family? { perFamily.first { $0.family == family } }

    // MARK: What the sync loop records

    /// One sync's duration in seconds; `full` says whether it was `from: nil`.
    public func observeSync(seconds: Double, full: Bool) {
        for family in perFamily { family.observeSync(seconds: seconds, full: full) }
    }

    /// How long one sync spent building the `ServiceTable` and its plans (part of the sync's duration).
    public func observeTableBuild(seconds: Double) { tableBuild.recordSeconds(seconds) }

    public func observeNetworkProgramming(seconds: Double) {
        for family in perFamily { family.networkProgramming.recordSeconds(max(0, seconds)) }
    }

    public func setLastSync(_ date: Date) {
        for family in perFamily { family.lastSync.set(date.timeIntervalSince1970) }
    }

    public func setLastQueued(_ date: Date) {
        for family in perFamily { family.lastQueued.set(date.timeIntervalSince1970) }
    }

    /// Changes received: the totals grow, the pending gauges follow.
    public func changesQueued(services: Int, endpoints: Int) {
        serviceChangesTotal.increment(by: services)
        serviceChangesPending.increment(by: Double(services))
        endpointChangesTotal.increment(by: endpoints)
        endpointChangesPending.increment(by: Double(endpoints))
    }

    public func setPending(services: Int, endpoints: Int) {
        serviceChangesPending.set(services)
        endpointChangesPending.set(endpoints)
    }

    /// A sync failed in any mode (Strait's; the iptables mode also counts kube-proxy's restore failures).
    public func syncFailed() { syncFailures.increment() }

    /// Service ports whose traffic policy is Local and that have endpoints, but none on this node,
    /// per family (kube-proxy's `no_local_endpoints_total`): ClusterIP traffic dropped (`internal`),
    /// external traffic dropped (`external`).
    public func setNoLocalEndpoints(_ table: ServiceTable) {
        for family in perFamily {
            var internalDrops = 0, externalDrops = 0
            for entry in table.ports.values {
                guard let plan = entry.plan(for: family.family) else { continue }
                if plan.clusterIPTraffic == .drop { internalDrops += 1 }
                if plan.externalTraffic == .drop { externalDrops += 1 }
            }
            family.noLocalEndpointsInternal.set(internalDrops)
            family.noLocalEndpointsExternal.set(externalDrops)
        }
    }

    public func countHealthz(code: Int) { Handles(registry: registry).counter(Name.healthz, code: code).increment() }
    public func countLivez(code: Int) { Handles(registry: registry).counter(Name.livez, code: code).increment() }

    /// The text `/metrics` serves (Prometheus text format 0.0.4). Bucket bounds print as Go prints
    /// them (`le="1"`, not `le="1.0"`), so queries written against kube-proxy match.
    public func render() -> String {
        registry.emitToString().split(separator: "\n", omittingEmptySubsequences: false).map { line in
            guard line.contains("_bucket{"), line.contains(".0\"} ") else { return String(line) }
            return line.replacingOccurrences(of: ".0\"} ", with: "\"} ")
        }.joined(separator: "\n")
    }
}

extension ProxyMetrics {
    /// One family's handles: each labelled `ip_family`.
    public struct Family: Sendable {
        public let family: IPFamily
        let syncDuration: CoreMetrics.Timer
        let fullSyncDuration: CoreMetrics.Timer?
        let partialSyncDuration: CoreMetrics.Timer?
        let networkProgramming: CoreMetrics.Timer
        let lastSync: Meter
        let lastQueued: Meter
        let noLocalEndpointsInternal: Meter
        let noLocalEndpointsExternal: Meter
        let conntrackDuration: CoreMetrics.Timer
        let conntrackDeleted: CoreMetrics.Counter
        let restoreFailures: CoreMetrics.Counter?
        let partialRestoreFailures: CoreMetrics.Counter?
        let rulesTotal: [String: Meter]
        let rulesLast: [String: Meter]

        /// The tables kube-proxy counts rules of (`sync_proxy_rules_iptables_total{table}`).
        public static let iptablesTables = ["filter", "nat"]

        fileprivate init(family: IPFamily, mode: ProxyMode, metrics: Handles) {
            self.family = family
            let label = [("ip_family", ProxyMetrics.label(family))]
            let buckets = ProxyMetrics.syncDurationBuckets
            syncDuration = metrics.histogram(Name.syncDuration, label, buckets: buckets)
            // kube-proxy registers these in the iptables and nftables modes only, the rest in iptables mode only.
            fullSyncDuration = mode == .ipvs ? nil : metrics.histogram(Name.fullSyncDuration, label, buckets: buckets)
            partialSyncDuration = mode == .ipvs
                ? nil : metrics.histogram(Name.partialSyncDuration, label, buckets: buckets)
            networkProgramming = metrics.histogram(Name.networkProgramming, label,
                                                   buckets: ProxyMetrics.networkProgrammingBuckets)
            lastSync = metrics.gauge(Name.lastSync, label)
            lastQueued = metrics.gauge(Name.lastQueued, label)
            noLocalEndpointsInternal = metrics.gauge(Name.noLocalEndpoints, label + [("traffic_policy", "internal")])
            noLocalEndpointsExternal = metrics.gauge(Name.noLocalEndpoints, label + [("traffic_policy", "external")])
            conntrackDuration = metrics.histogram(Name.conntrackDuration, label, buckets: buckets)
            conntrackDeleted = metrics.counter(Name.conntrackDeleted, label)
            let iptables = mode == .iptables
            restoreFailures = iptables ? metrics.counter(Name.restoreFailures, label) : nil
            partialRestoreFailures = iptables ? metrics.counter(Name.partialRestoreFailures, label) : nil
            func perTable(_ name: Name) -> [String: Meter] {
                guard iptables else { return [:] }
                return Dictionary(uniqueKeysWithValues: Self.iptablesTables.map {
                    ($0, metrics.gauge(name, label + [("table", $0)]))
                })
            }
            rulesTotal = perTable(Name.rulesTotal)
            rulesLast = perTable(Name.rulesLast)
        }

        func observeSync(seconds: Double, full: Bool) {
            syncDuration.recordSeconds(seconds)
            (full ? fullSyncDuration : partialSyncDuration)?.recordSeconds(seconds)
        }

        /// One conntrack cleanup of this family: how long it took and how many flows it deleted.
        public func conntrackReconciled(seconds: Double, deleted: Int) {
            conntrackDuration.recordSeconds(seconds)
            conntrackDeleted.increment(by: deleted)
        }

        /// An `iptables-restore` failed; `partial` when it was a partial sync (kube-proxy then falls
        /// back to a full one).
        public func iptablesRestoreFailed(partial: Bool) {
            restoreFailures?.increment()
            if partial { partialRestoreFailures?.increment() }
        }

        /// The rules this mode owns in `table` and how many the last sync wrote there.
        public func setIPTablesRules(table: String, total: Int, lastSync: Int) {
            rulesTotal[table]?.set(total)
            rulesLast[table]?.set(lastSync)
        }
    }

    /// A metric's name, help and type, as kube-proxy declares it (help with its `[ALPHA]` stability mark).
    struct Name: Sendable {
        var name: String
        var help: String

        init(_ name: String, _ help: String, strait: Bool = false) {
            self.name = name
            self.help = strait ? help : "[ALPHA] " + help
        }

        static let syncDuration = Name("kubeproxy_sync_proxy_rules_duration_seconds",
                                       "SyncProxyRules latency in seconds")
        static let fullSyncDuration = Name("kubeproxy_sync_full_proxy_rules_duration_seconds",
                                           "SyncProxyRules latency in seconds for full resyncs")
        static let partialSyncDuration = Name("kubeproxy_sync_partial_proxy_rules_duration_seconds",
                                              "SyncProxyRules latency in seconds for partial resyncs")
        static let networkProgramming = Name("kubeproxy_network_programming_duration_seconds",
                                             "In Cluster Network Programming Latency in seconds")
        static let lastSync = Name("kubeproxy_sync_proxy_rules_last_timestamp_seconds",
                                   "The last time proxy rules were successfully synced")
        static let lastQueued = Name("kubeproxy_sync_proxy_rules_last_queued_timestamp_seconds",
                                     "The last time a sync of proxy rules was queued")
        static let serviceChangesTotal = Name("kubeproxy_sync_proxy_rules_service_changes_total",
                                              "Cumulative proxy rules Service changes")
        static let serviceChangesPending = Name("kubeproxy_sync_proxy_rules_service_changes_pending",
                                                "Pending proxy rules Service changes")
        static let endpointChangesTotal = Name("kubeproxy_sync_proxy_rules_endpoint_changes_total",
                                               "Cumulative proxy rules Endpoint changes")
        static let endpointChangesPending = Name("kubeproxy_sync_proxy_rules_endpoint_changes_pending",
                                                 "Pending proxy rules Endpoint changes")
        static let noLocalEndpoints = Name("kubeproxy_sync_proxy_rules_no_local_endpoints_total",
                                           "Number of services with a Local traffic policy and no endpoints")
        static let restoreFailures = Name("kubeproxy_sync_proxy_rules_iptables_restore_failures_total",
                                          "Cumulative proxy iptables restore failures")
        static let partialRestoreFailures = Name("kubeproxy_sync_proxy_rules_iptables_partial_restore_failures_total",
                                                 "Cumulative proxy iptables partial restore failures")
        static let rulesTotal = Name("kubeproxy_sync_proxy_rules_iptables_total",
                                     "Total number of iptables rules owned by kube-proxy")
        static let rulesLast = Name("kubeproxy_sync_proxy_rules_iptables_last",
                                    "Number of iptables rules written by kube-proxy in last sync")
        static let conntrackDuration = Name("kubeproxy_conntrack_reconciler_sync_duration_seconds",
                                            "ReconcileConntrackFlowsLatency latency in seconds")
        static let conntrackDeleted = Name("kubeproxy_conntrack_reconciler_deleted_entries_total",
                                           "Cumulative conntrack flows deleted by conntrack reconciler")
        static let healthz = Name("kubeproxy_proxy_healthz_total", "Cumulative proxy healthz HTTP status")
        static let livez = Name("kubeproxy_proxy_livez_total", "Cumulative proxy livez HTTP status")
        static let syncFailures = Name("strait_sync_proxy_rules_failures_total",
                                       "Failed proxy rule syncs in any mode (Strait)", strait: true)
        static let tableBuild = Name("strait_service_table_build_duration_seconds",
                                     "Time a sync spent building the service table and its plans (Strait)",
                                     strait: true)
    }

    /// Makes swift-metrics handles whose backing Prometheus metrics carry the help text and buckets
    /// (swift-prometheus's `MetricsFactory` would register them without help).
    fileprivate struct Handles {
        let registry: PrometheusCollectorRegistry

        private func descriptor(_ name: Name) -> MetricNameDescriptor {
            MetricNameDescriptor(metricName: name.name, unitName: "", helpText: name.help)
        }

        func counter(_ name: Name, _ labels: [(String, String)] = []) -> CoreMetrics.Counter {
            CoreMetrics.Counter(label: name.name, dimensions: labels,
                                handler: registry.makeCounter(descriptor: descriptor(name), labels: labels))
        }

        func counter(_ name: Name, code: Int) -> CoreMetrics.Counter { counter(name, [("code", String(code))]) }

        func gauge(_ name: Name, _ labels: [(String, String)] = []) -> Meter {
            Meter(label: name.name, dimensions: labels,
                  handler: registry.makeGauge(descriptor: descriptor(name), labels: labels))
        }

        func histogram(_ name: Name, _ labels: [(String, String)] = [], buckets: [Duration]) -> CoreMetrics.Timer {
            CoreMetrics.Timer(label: name.name, dimensions: labels,
                              handler: registry.makeDurationHistogram(descriptor: descriptor(name), labels: labels,
                                                                      buckets: buckets))
        }
    }
}

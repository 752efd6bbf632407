import Foundation
import NIOConcurrencyHelpers

/// kube-proxy's metrics (`pkg/proxy/metrics/metrics.go`), same names, types and buckets, rendered
/// in the Prometheus text exposition format (0.0.4) for `/metrics`.
///
/// A small hand-written registry rather than swift-metrics + swift-prometheus: the set of metrics
/// is fixed, the exact names and buckets matter for existing dashboards, and the proxy needs no
/// other metrics backend; this keeps two packages out of the binary.
public final class ProxyMetrics: Sendable {
    public static let syncDurationBuckets = (0..<15).map { 0.001 * Double(1 << $0) }
    /// 0.25 s, 0.5 s, 1…59 s by 1, 60…115 s by 5, 120…300 s by 30, as kube-proxy.
    public static let networkProgrammingBuckets: [Double] =
        [0.25, 0.5] + (1...59).map(Double.init) + (0..<12).map { 60 + 5 * Double($0) } + (0..<7).map { 120 + 30 * Double($0) }

    struct Histogram: Sendable {
        let buckets: [Double]
        var counts: [UInt64]
        var sum = 0.0
        var count: UInt64 = 0

        init(buckets: [Double]) {
            self.buckets = buckets
            counts = Array(repeating: 0, count: buckets.count)
        }

        mutating func observe(_ value: Double) {
            for (i, bound) in buckets.enumerated() where value <= bound { counts[i] += 1 }
            sum += value
            count += 1
        }
    }

    struct State: Sendable {
        var syncDuration = Histogram(buckets: ProxyMetrics.syncDurationBuckets)
        var fullSyncDuration = Histogram(buckets: ProxyMetrics.syncDurationBuckets)
        var partialSyncDuration = Histogram(buckets: ProxyMetrics.syncDurationBuckets)
        var networkProgramming = Histogram(buckets: ProxyMetrics.networkProgrammingBuckets)
        var tableBuild = Histogram(buckets: ProxyMetrics.syncDurationBuckets)
        var lastSync = 0.0
        var lastQueued = 0.0
        var serviceChangesTotal: UInt64 = 0
        var serviceChangesPending = 0
        var endpointChangesTotal: UInt64 = 0
        var endpointChangesPending = 0
        var syncFailures: UInt64 = 0
        var conntrackDeletions: UInt64 = 0
        var healthz: [Int: UInt64] = [:]
        var livez: [Int: UInt64] = [:]
    }

    private let state = NIOLockedValueBox(State())

    public init() {}

    /// One sync's duration in seconds; `full` says whether it was `from: nil`.
    public func observeSync(seconds: Double, full: Bool) {
        state.withLockedValue {
            $0.syncDuration.observe(seconds)
            if full { $0.fullSyncDuration.observe(seconds) } else { $0.partialSyncDuration.observe(seconds) }
        }
    }

    /// How long one sync spent building the `ServiceTable` and its plans (part of the sync's duration).
    public func observeTableBuild(seconds: Double) {
        state.withLockedValue { $0.tableBuild.observe(seconds) }
    }

    public func observeNetworkProgramming(seconds: Double) {
        state.withLockedValue { $0.networkProgramming.observe(max(0, seconds)) }
    }

    public func setLastSync(_ date: Date) { state.withLockedValue { $0.lastSync = date.timeIntervalSince1970 } }
    public func setLastQueued(_ date: Date) { state.withLockedValue { $0.lastQueued = date.timeIntervalSince1970 } }

    /// Changes received: the totals grow, the pending gauges follow.
    public func changesQueued(services: Int, endpoints: Int) {
        state.withLockedValue {
            $0.serviceChangesTotal += UInt64(services)
            $0.serviceChangesPending += services
            $0.endpointChangesTotal += UInt64(endpoints)
            $0.endpointChangesPending += endpoints
        }
    }

    public func setPending(services: Int, endpoints: Int) {
        state.withLockedValue {
            $0.serviceChangesPending = services
            $0.endpointChangesPending = endpoints
        }
    }

    public func syncFailed() { state.withLockedValue { $0.syncFailures += 1 } }
    public func conntrackEntriesDeleted(_ count: Int) { state.withLockedValue { $0.conntrackDeletions += UInt64(count) } }
    public func countHealthz(code: Int) { state.withLockedValue { $0.healthz[code, default: 0] += 1 } }
    public func countLivez(code: Int) { state.withLockedValue { $0.livez[code, default: 0] += 1 } }

    /// The text `/metrics` serves.
    public func render() -> String {
        let s = state.withLockedValue { $0 }
        var out = ""
        func header(_ name: String, _ type: String, _ help: String) {
            out += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n"
        }
        func histogram(_ name: String, _ help: String, _ h: Histogram) {
            header(name, "histogram", help)
            for (bound, count) in zip(h.buckets, h.counts) {
                out += "\(name)_bucket{le=\"\(number(bound))\"} \(count)\n"
            }
            out += "\(name)_bucket{le=\"+Inf\"} \(h.count)\n\(name)_sum \(number(h.sum))\n\(name)_count \(h.count)\n"
        }
        func sample(_ name: String, _ type: String, _ help: String, _ value: String) {
            header(name, type, help)
            out += "\(name) \(value)\n"
        }
        func labelled(_ name: String, _ help: String, _ values: [Int: UInt64]) {
            header(name, "counter", help)
            for (code, value) in values.sorted(by: { $0.key < $1.key }) { out += "\(name){code=\"\(code)\"} \(value)\n" }
        }
        histogram("kubeproxy_sync_proxy_rules_duration_seconds", "SyncProxyRules latency in seconds", s.syncDuration)
        histogram("kubeproxy_sync_full_proxy_rules_duration_seconds",
                  "SyncProxyRules latency in seconds for full resyncs", s.fullSyncDuration)
        histogram("kubeproxy_sync_partial_proxy_rules_duration_seconds",
                  "SyncProxyRules latency in seconds for partial resyncs", s.partialSyncDuration)
        histogram("kubeproxy_network_programming_duration_seconds",
                  "In Cluster Network Programming Latency in seconds", s.networkProgramming)
        histogram("strait_service_table_build_duration_seconds",
                  "Time a sync spent building the service table and its plans (Strait)", s.tableBuild)
        sample("kubeproxy_sync_proxy_rules_last_timestamp_seconds", "gauge",
               "The last time proxy rules were successfully synced", number(s.lastSync))
        sample("kubeproxy_sync_proxy_rules_last_queued_timestamp_seconds", "gauge",
               "The last time a sync of proxy rules was queued", number(s.lastQueued))
        sample("kubeproxy_sync_proxy_rules_service_changes_total", "counter",
               "Cumulative proxy rules Service changes", String(s.serviceChangesTotal))
        sample("kubeproxy_sync_proxy_rules_service_changes_pending", "gauge",
               "Pending proxy rules Service changes", String(s.serviceChangesPending))
        sample("kubeproxy_sync_proxy_rules_endpoint_changes_total", "counter",
               "Cumulative proxy rules Endpoint changes", String(s.endpointChangesTotal))
        sample("kubeproxy_sync_proxy_rules_endpoint_changes_pending", "gauge",
               "Pending proxy rules Endpoint changes", String(s.endpointChangesPending))
        sample("kubeproxy_sync_proxy_rules_failures_total", "counter",
               "Failed proxy rule syncs (Strait)", String(s.syncFailures))
        sample("kubeproxy_conntrack_reconciler_deleted_entries_total", "counter",
               "Conntrack entries deleted for stale UDP endpoints", String(s.conntrackDeletions))
        labelled("kubeproxy_proxy_healthz_total", "Cumulative proxy healthz HTTP status", s.healthz)
        labelled("kubeproxy_proxy_livez_total", "Cumulative proxy livez HTTP status", s.livez)
        return out
    }

    /// Go's `%g`-like shortest text for a sample value.
    private func number(_ value: Double) -> String {
        if value == value.rounded(), abs(value) < 1e15 { return String(Int64(value)) }
        return "\(value)"
    }
}

import Foundation
import NIOConcurrencyHelpers
import StraitModel

/// kube-proxy's proxy health (`pkg/proxy/healthcheck/proxy_health.go`): a family is healthy unless
/// an update was queued more than `2 × syncPeriod` ago and no sync has programmed it since; the
/// proxy is healthy when every family is. `/healthz` adds the node's eligibility (see
/// `NodeEligibility`); `/livez` is the same check without it.
public final class ProxyHealth: Sendable {
    struct State: Sendable {
        var lastUpdated: [IPFamily: Date] = [:]
        var oldestPendingQueued: [IPFamily: Date] = [:]
        var node = NodeEligibility.unknown
    }

    public let timeout: TimeInterval
    /// The families the proxy programs (one sync programs them all).
    public let families: [IPFamily]
    private let state = NIOLockedValueBox(State())

    /// `syncPeriod` in seconds; the timeout is twice it.
    public init(syncPeriod: TimeInterval, families: [IPFamily] = [.ipv4]) {
        timeout = 2 * syncPeriod
        self.families = families
    }

    /// A change arrived that a sync has yet to program (kube-proxy's `QueuedUpdate`).
    public func queued(at date: Date = Date()) {
        state.withLockedValue { state in
            for family in families where state.oldestPendingQueued[family] == nil {
                state.oldestPendingQueued[family] = date
            }
        }
    }

    /// A sync succeeded (kube-proxy's `Updated`, for every family).
    public func updated(at date: Date = Date()) {
        state.withLockedValue { state in
            for family in families {
                state.lastUpdated[family] = date
                state.oldestPendingQueued[family] = nil
            }
        }
    }

    /// This node's Node object changed (nil: it is gone, or the source has none).
    public func nodeChanged(_ node: Node?) {
        state.withLockedValue { $0.node = $0.node.next(node) }
    }

    public var nodeEligible: Bool { state.withLockedValue { $0.node.isEligible } }

    public struct Status: Sendable, Hashable {
        /// Every family is healthy (the node's eligibility is not part of it).
        public var healthy: Bool
        /// The latest successful sync of any family.
        public var lastUpdated: Date?
        public var currentTime: Date
        public var families: [IPFamily: FamilyStatus]
        public var nodeEligible: Bool
    }

    public struct FamilyStatus: Sendable, Hashable {
        public var lastUpdated: Date
        public var healthy: Bool
    }

    public func status(now: Date = Date()) -> Status {
        let s = state.withLockedValue { $0 }
        var families: [IPFamily: FamilyStatus] = [:]
        for (family, lastUpdated) in s.lastUpdated {
            // Healthy while starting up, fully synced, or with a queued update that is not late yet.
            let late = s.oldestPendingQueued[family].map { now.timeIntervalSince($0) >= timeout } ?? false
            families[family] = FamilyStatus(lastUpdated: lastUpdated, healthy: !late)
        }
        // Before the first sync no family has a status: healthy unless an update waits too long.
        let lateBeforeFirstSync = s.lastUpdated.isEmpty
            && s.oldestPendingQueued.values.contains { now.timeIntervalSince($0) >= timeout }
        return Status(healthy: families.values.allSatisfy(\.healthy) && !lateBeforeFirstSync,
                      lastUpdated: s.lastUpdated.values.max(), currentTime: now, families: families,
                      nodeEligible: s.node.isEligible)
    }

    /// The `/healthz` (`includeNode`) or `/livez` body, as kube-proxy marshals its `ProxyHealth`:
    /// `{"lastUpdated":…,"currentTime":…,"nodeEligible":true,"healthy":true,"status":{"IPv4":{…}}}`,
    /// times in RFC 3339 with nanoseconds. When the answer is 200, `lastUpdated` is the current time
    /// (kube-proxy keeps that for old clients); `status` is left out before the first sync.
    public static func json(_ status: Status, includeNode: Bool) -> String {
        let ok = status.healthy && (!includeNode || status.nodeEligible)
        let lastUpdated = ok ? status.currentTime : status.lastUpdated
        var text = "{\"lastUpdated\":\"\(rfc3339(lastUpdated))\",\"currentTime\":\"\(rfc3339(status.currentTime))\""
        if includeNode { text += ",\"nodeEligible\":\(status.nodeEligible)" }
        text += ",\"healthy\":\(status.healthy)"
        if !status.families.isEmpty {
            let sorted = status.families.sorted { $0.key.kubernetesName < $1.key.kubernetesName }
            let entries = sorted.map { family, health in
                "\"\(family.kubernetesName)\":{\"lastUpdated\":\"\(rfc3339(health.lastUpdated))\","
                    + "\"healthy\":\(health.healthy)}"
            }
            text += ",\"status\":{" + entries.joined(separator: ",") + "}"
        }
        return text + "}"
    }

    /// Go's `time.Time` in JSON (RFC 3339, nanoseconds without trailing zeros), in UTC:
    /// `2024-05-01T12:00:00.5Z`; nil prints Go's zero time.
    static func rfc3339(_ date: Date?) -> String {
        guard let date else { return "0001-01-01T00:00:00Z" }
        let interval = date.timeIntervalSince1970
        let seconds = Int64(interval.rounded(.down))
        var nanos = Int64(((interval - Double(seconds)) * 1e9).rounded())
        var whole = seconds
        if nanos >= 1_000_000_000 {
            whole += 1
            nanos -= 1_000_000_000
        }
        let days = whole >= 0 ? whole / 86400 : (whole - 86399) / 86400
        let secondOfDay = whole - days * 86400
        // Howard Hinnant's civil_from_days.
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let day = doy - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        let year = yoe + era * 400 + (month <= 2 ? 1 : 0)
        func two(_ n: Int64) -> String { n < 10 ? "0\(n)" : "\(n)" }
        var text = "\(year)-\(two(month))-\(two(day))T\(two(secondOfDay / 3600)):\(two(secondOfDay / 60 % 60))"
            + ":\(two(secondOfDay % 60))"
        if nanos > 0 {
            var fraction = String(nanos)
            fraction = String(repeating: "0", count: 9 - fraction.count) + fraction
            while fraction.hasSuffix("0") { fraction.removeLast() }
            text += "." + fraction
        }
        return text + "Z"
    }
}

/// Whether load balancers should send this node traffic, as kube-proxy's `/healthz` reports it:
/// not while its Node is being deleted or carries the cluster autoscaler's
/// `ToBeDeletedByClusterAutoscaler` taint. kube-proxy reports a missing Node as not eligible; Strait
/// does so once it has seen the Node, but counts a node whose source has never shown it (the
/// standalone store need not hold Nodes) as eligible.
enum NodeEligibility: Sendable, Hashable {
    /// No Node object seen yet.
    case unknown
    case eligible
    /// Deleting, tainted, or gone.
    case ineligible

    static let toBeDeletedTaint = "ToBeDeletedByClusterAutoscaler"

    var isEligible: Bool { self != .ineligible }

    func next(_ node: Node?) -> NodeEligibility {
        guard let node else { return self == .unknown ? .unknown : .ineligible }
        if node.metadata.isDeleting { return .ineligible }
        if (node.spec?.taints ?? []).contains(where: { $0.key == Self.toBeDeletedTaint }) { return .ineligible }
        return .eligible
    }
}

extension IPFamily {
    /// `IPv4` or `IPv6`, as Kubernetes' `v1.IPFamily` spells it.
    var kubernetesName: String { self == .ipv4 ? "IPv4" : "IPv6" }
}

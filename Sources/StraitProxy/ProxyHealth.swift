import Foundation
import NIOConcurrencyHelpers

/// kube-proxy's proxy health (`pkg/proxy/healthcheck/proxy_health.go`): healthy unless an update
/// was queued more than `2 × syncPeriod` ago and no sync has programmed it since. `/healthz` adds
/// the node's eligibility (always true here: standalone mode has no autoscaler taints);
/// `/livez` is the same check without it.
public final class ProxyHealth: Sendable {
    struct State: Sendable {
        var lastUpdated: Date?
        var oldestPendingQueued: Date?
    }

    public let timeout: TimeInterval
    private let state = NIOLockedValueBox(State())

    /// `syncPeriod` in seconds; the timeout is twice it.
    public init(syncPeriod: TimeInterval) {
        timeout = 2 * syncPeriod
    }

    /// A change arrived that a sync has yet to program (kube-proxy's `QueuedUpdate`).
    public func queued(at date: Date = Date()) {
        state.withLockedValue { if $0.oldestPendingQueued == nil { $0.oldestPendingQueued = date } }
    }

    /// A sync succeeded (kube-proxy's `Updated`).
    public func updated(at date: Date = Date()) {
        state.withLockedValue {
            $0.lastUpdated = date
            $0.oldestPendingQueued = nil
        }
    }

    public struct Status: Sendable, Hashable {
        public var healthy: Bool
        public var lastUpdated: Date?
        public var currentTime: Date
    }

    public func status(now: Date = Date()) -> Status {
        let s = state.withLockedValue { $0 }
        let healthy = s.oldestPendingQueued.map { now.timeIntervalSince($0) <= timeout } ?? true
        return Status(healthy: healthy, lastUpdated: s.lastUpdated, currentTime: now)
    }

    /// The `/healthz` (with `nodeEligible`) or `/livez` body:
    /// `{"lastUpdated":"…","currentTime":"…","nodeEligible":true,"healthy":true}`, times as Go's
    /// `time.Time.String()` prints them in UTC (kube-proxy's format).
    public static func json(_ status: Status, includeNode: Bool) -> String {
        var text = "{\"lastUpdated\":\"\(goTime(status.lastUpdated))\",\"currentTime\":\"\(goTime(status.currentTime))\""
        if includeNode { text += ",\"nodeEligible\":true" }
        text += ",\"healthy\":\(status.healthy)}"
        return text
    }

    /// `2024-05-01 12:00:00.123456789 +0000 UTC`; nil prints Go's zero time.
    static func goTime(_ date: Date?) -> String {
        guard let date else { return "0001-01-01 00:00:00 +0000 UTC" }
        let interval = date.timeIntervalSince1970
        let seconds = Int64(interval.rounded(.down))
        let nanos = Int64(((interval - Double(seconds)) * 1e9).rounded())
        let days = seconds >= 0 ? seconds / 86400 : (seconds - 86399) / 86400
        let secondOfDay = seconds - days * 86400
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
        var text = "\(year)-\(two(month))-\(two(day)) \(two(secondOfDay / 3600)):\(two(secondOfDay / 60 % 60)):\(two(secondOfDay % 60))"
        if nanos > 0 && nanos < 1_000_000_000 {
            var fraction = String(nanos)
            fraction = String(repeating: "0", count: 9 - fraction.count) + fraction
            while fraction.hasSuffix("0") { fraction.removeLast() }
            text += "." + fraction
        }
        return text + " +0000 UTC"
    }
}

import struct Foundation.Date
import StraitProxy

extension ProxyHealth {
    /// Marks the proxy unhealthy until its first sync: a source that has never completed its first
    /// list (an API server that refuses the token, or cannot be reached) has programmed nothing, so
    /// `/healthz` and `/livez` answer 503 from the start instead of after `2 × syncPeriod`. In
    /// kube-proxy's terms the first list is an update queued before the proxy started, and so late
    /// at once; the first successful sync clears it like any other.
    /// Equivalent: `curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:10256/healthz` → 503.
    public func failUntilFirstSync() {
        queued(at: .distantPast)
    }
}

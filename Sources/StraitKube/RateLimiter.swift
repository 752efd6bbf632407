/// client-go's token bucket (`flowcontrol.NewTokenBucketRateLimiter`): `qps` tokens a second, at
/// most `burst` saved up; every request takes one and waits when none is left. kube-proxy's
/// `--kube-api-qps` / `--kube-api-burst` (5 and 10 by default).
public actor RateLimiter {
    public let qps: Double
    public let burst: Int
    private var tokens: Double
    private var last: ContinuousClock.Instant
    private let clock = ContinuousClock()

    /// `qps` ≤ 0 means unlimited.
    public init(qps: Double, burst: Int) {
        self.qps = qps
        self.burst = max(1, burst)
        tokens = Double(max(1, burst))
        last = clock.now
    }

    /// Takes one token, sleeping until there is one.
    public func acquire() async throws {
        guard qps > 0 else { return }
        refill()
        tokens -= 1
        if tokens < 0 {
            // This caller's token arrives when the debt is paid back; later callers queue behind it.
            try await Task.sleep(for: .seconds(-tokens / qps))
        }
    }

    private func refill() {
        let now = clock.now
        let elapsed = now - last
        last = now
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        tokens = min(Double(burst), tokens + seconds * qps)
    }
}

import StraitKube
import Testing

/// Request pacing and retry delays, rootless. Only lower bounds on time are asserted: a slow
/// machine can make a wait longer, never shorter.
struct PacingTests {
    @Test func burstIsFreeThenRequestsWaitForTokens() async throws {
        let limiter = RateLimiter(qps: 20, burst: 2)
        let clock = ContinuousClock()
        let start = clock.now
        try await limiter.acquire()
        try await limiter.acquire()
        try await limiter.acquire()
        try await limiter.acquire()
        // Two tokens were saved up; the next two arrive 50 ms apart.
        #expect(clock.now - start >= .milliseconds(95))
    }

    @Test func zeroQPSIsUnlimited() async throws {
        let limiter = RateLimiter(qps: 0, burst: 1)
        for _ in 0..<1000 { try await limiter.acquire() }
    }

    @Test func backoffDoublesWithJitterUpToTheMaximumAndResets() {
        var backoff = Backoff(initial: .milliseconds(100), maximum: .seconds(1), jitter: 1.0)
        let bases: [Duration] = [.milliseconds(100), .milliseconds(200), .milliseconds(400), .milliseconds(800), .seconds(1)]
        for base in bases {
            let delay = backoff.next()
            #expect(delay >= base && delay <= min(base * 2, .seconds(1)), "\(delay) for base \(base)")
        }
        #expect(backoff.next() == .seconds(1))
        backoff.reset()
        let first = backoff.next()
        #expect(first >= .milliseconds(100) && first <= .milliseconds(200))
    }
}

/// Delays between retries, as client-go's reflector waits: start at `initial`, double each time
/// up to `maximum`, each delay stretched by a random share (`jitter` 1.0: up to twice as long) so
/// many clients that lost the same server do not come back in step.
public struct Backoff: Sendable, Hashable {
    public var initial: Duration
    public var maximum: Duration
    public var jitter: Double
    private var current: Duration?

    public init(initial: Duration = .milliseconds(800), maximum: Duration = .seconds(30), jitter: Double = 1.0) {
        self.initial = initial
        self.maximum = maximum
        self.jitter = jitter
    }

    /// The next delay; each call doubles the base.
    public mutating func next() -> Duration {
        let base = current.map { min($0 * 2, maximum) } ?? initial
        current = base
        return min(base * (1 + Double.random(in: 0...jitter)), maximum)
    }

    /// Back to `initial` after a success.
    public mutating func reset() { current = nil }
}

/// Where one sync's time went, step by step: Strait's own work (translation, comparison, building
/// the helper table) beside the kernel's (dumps, requests, commits), so a slow sync says which it was.
public struct IPVSSyncPhases: Sendable, Hashable, CustomStringConvertible {
    /// The device, sysctls and timeouts (full sync only).
    public var prepare: Duration = .zero
    /// Plans into per-port shares: virtual services, addresses, helper-rule shares, use counts.
    public var translate: Duration = .zero
    /// Reading back what the kernel holds: node and device addresses, virtual services, real servers.
    public var dump: Duration = .zero
    /// Finding real servers still in use (connection counts read for services that lose one).
    public var drain: Duration = .zero
    /// Comparing what the kernel holds with what is wanted (`IPVSChanges`).
    public var compare: Duration = .zero
    /// Adding and deleting the device's service addresses.
    public var addresses: Duration = .zero
    /// Sending the IPVS requests.
    public var requests: Duration = .zero
    /// Building the helper table's transaction (or the hairpin elements' one).
    public var buildRules: Duration = .zero
    /// Committing it.
    public var commitRules: Duration = .zero

    public init() {}

    /// Every step, in the order a sync takes them.
    public var steps: [(name: String, duration: Duration)] {
        [("prepare", prepare), ("translate", translate), ("dump", dump), ("drain", drain), ("compare", compare),
         ("addresses", addresses), ("requests", requests), ("build-rules", buildRules),
         ("commit-rules", commitRules)]
    }

    /// The sum of the steps.
    public var total: Duration { steps.reduce(.zero) { $0 + $1.duration } }

    /// "prepare=1.20ms translate=35.10ms …", milliseconds with two decimals.
    public var description: String {
        steps.map { "\($0.name)=\(milliseconds($0.duration))ms" }.joined(separator: " ")
    }

    /// Runs `body` and adds its time to the step at `step`.
    mutating func measure<Value>(_ step: WritableKeyPath<IPVSSyncPhases, Duration>,
                                 _ body: () throws -> Value) rethrows -> Value {
        let clock = ContinuousClock()
        let start = clock.now
        defer { self[keyPath: step] += clock.now - start }
        return try body()
    }
}

private func milliseconds(_ duration: Duration) -> String {
    let (seconds, attoseconds) = duration.components
    let hundredths = seconds * 100_000 + attoseconds / 10_000_000_000_000
    let fraction = hundredths % 100
    return "\(hundredths / 100).\(fraction < 10 ? "0" : "")\(fraction)"
}

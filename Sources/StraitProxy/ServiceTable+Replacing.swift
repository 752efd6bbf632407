extension ServiceTable {
    /// A copy with `entries` put in (by name) that remembers it differs from this table only there,
    /// as the snapshots `ProxyObjects` builds do, so `changedPorts(since: self)` compares those only.
    /// For callers that build tables by hand (benchmarks, tests) and want the production path.
    public func replacing(_ entries: [ServicePortEntry]) -> ServiceTable {
        var next = self
        for entry in entries { next.ports[entry.name] = entry }
        next.recordChanges(Set(entries.map(\.name)), since: self)
        return next
    }
}

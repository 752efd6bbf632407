/// The kernel interface a proxy programs; `/proxyMode` prints the raw value.
public enum ProxyMode: String, Sendable, CaseIterable {
    case iptables, nftables, ipvs
}

/// One mode of the proxy: turns `ServiceTable` snapshots into kernel state. It knows no source of
/// objects; the sync loop hands it snapshots.
public protocol ProxyBackend: Sendable {
    var mode: ProxyMode { get }

    /// Programs `new` in one atomic kernel transaction. `old` is what the previous successful sync
    /// programmed, or nil for a full sync (at start, on the periodic resync, after a failure): then
    /// the backend rewrites everything it owns. A failed sync leaves the old rules in place.
    func sync(from old: ServiceTable?, to new: ServiceTable) async throws

    /// Removes every rule, set, chain, table and device this mode made, and nothing else.
    func cleanup() async throws
}

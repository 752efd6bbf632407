import StraitModel
import StraitNetlink
import StraitProxy
import StraitProxyIPVS

#if canImport(Glibc)
import Glibc
#endif

/// `ipvs-proxy NETNS FLOORNS SERVICES [CHANGES]`: the IPVS mode's backend in the existing namespace
/// NETNS (a kernel with IPVS: inside `scripts/vm`), SERVICES ClusterIP Services × 10 endpoints (the
/// same plans `nft-proxy` uses):
/// - `full-sync-ms`: the first full sync into an empty namespace: dummy device, service addresses,
///   every virtual service and real server, the helper table;
/// - `ipvs-apply-ms`: the IPVS requests of that sync alone, sent again by the same code into the empty
///   namespace FLOORNS (then flushed, so `ipvsadm -R` finds it empty); `requests` counts them;
/// - `change-ms p50 p99`: CHANGES (default 50) syncs that each replace one endpoint of one Service
///   (tables that remember the changed port, as `ProxyObjects` makes them for the sync loop);
///   `observed-ms`: the same, until a netlink read of that one service (`GET_DEST`) shows the new
///   real server and not the old one (netlink requests are acknowledged once applied, so the read
///   confirms rather than waits);
/// - `full-sync-phases`: where the full sync's time went (`IPVSSyncPhases`);
/// - `rss-mb`: this process's peak resident set.
/// Leaves the services in NETNS, for `ipvsadm -Sn` and `ipvsadm -R` comparisons by `scripts/bench`.
func ipvsProxyWorkload(_ arguments: [String]) async throws {
    guard arguments.count >= 3, let count = Int(arguments[2]), count > 0 else { throw IPVSProxyUsage() }
    let changes = arguments.count > 3 ? Int(arguments[3]) ?? 50 : 50
    let namespace = arguments[0], floorNamespace = arguments[1]
    let options = ProxyOptions(clusterCIDRs: [IPCIDR("10.128.0.0/9")!])
    let backend = try IPVSBackend(family: .ipv4, settings: IPVSSettings(options: options, namespace: namespace))
    let reader = try IPVSConnection(namespace: namespace)

    var entries = (0..<count).map { benchService($0, generation: 0) }
    var table = ServiceTable().replacing(entries)
    var start = monotonicSeconds()
    try await backend.sync(from: nil, to: table)
    let full = monotonicSeconds() - start
    guard let summary = await backend.lastSync, summary.full else {
        throw IPVSProxyUsage(problem: "the first sync was not a full sync")
    }

    // The IPVS part alone: the same differences (from nothing) by the same code into an empty namespace.
    let floor = try IPVSConnection(namespace: floorNamespace)
    let desired = try IPVSVirtualServers(kernel: reader.services()) {
        try reader.destinations(of: $0).map(\.destination)
    }
    let fromNothing = IPVSChanges(from: IPVSVirtualServers(), to: desired)
    start = monotonicSeconds()
    try fromNothing.apply(to: floor)
    let apply = monotonicSeconds() - start
    try floor.flush()

    var syncs: [Double] = [], observed: [Double] = []
    for change in 0..<changes {
        let index = change * 7919 % count
        let old = entries[index].allEndpoints[0]
        entries[index] = benchService(index, generation: change + 1)
        let new = entries[index].allEndpoints[0]
        // As `ProxyObjects` hands tables to the sync loop: remembering the one port that changed.
        let next = table.replacing([entries[index]])
        let service = IPVSService(address: entries[index].clusterIPs[0].description, port: 80)
        start = monotonicSeconds()
        try await backend.sync(from: table, to: next)
        let synced = monotonicSeconds()
        let present = Set(try reader.destinations(of: service).map(\.destination.description))
        let seen = monotonicSeconds()
        guard present.contains("\(new.address):\(new.port)"), !present.contains("\(old.address):\(old.port)") else {
            throw IPVSProxyUsage(problem: "after change \(change), \(service) holds \(present.sorted()), "
                                 + "not \(new.address):\(new.port) without \(old.address):\(old.port)")
        }
        syncs.append(synced - start)
        observed.append(seen - start)
        table = next
    }

    var usage = rusage()
    getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage)
    func ms(_ seconds: Double) -> String { twoDecimals(seconds * 1000) }
    func percentile(_ values: [Double], _ p: Double) -> Double {
        let sorted = values.sorted()
        return sorted[min(sorted.count - 1, Int(Double(sorted.count) * p))]
    }
    print("full-sync-ms=\(ms(full)) ipvs-apply-ms=\(ms(apply)) requests=\(fromNothing.count) "
          + "addresses=\(summary.addressesAdded)")
    print("full-sync-phases \(summary.phases)")
    print("change-ms p50=\(ms(percentile(syncs, 0.5))) p99=\(ms(percentile(syncs, 0.99)))")
    print("observed-ms p50=\(ms(percentile(observed, 0.5))) p99=\(ms(percentile(observed, 0.99)))")
    print("rss-mb=\(usage.ru_maxrss / 1024)")
    print("seconds=\(full)")
}

struct IPVSProxyUsage: Error, CustomStringConvertible {
    var problem = "usage: strait-bench ipvs-proxy NETNS FLOORNS SERVICES [CHANGES]"
    var description: String { problem }
}

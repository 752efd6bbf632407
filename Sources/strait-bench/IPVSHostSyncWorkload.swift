import StraitModel
import StraitNetlink
import StraitNFT
import StraitProxy
import StraitProxyIPVS

/// `ipvs-host-sync NETNS SERVICES [SYNCS]`: the IPVS mode's own cost on a kernel without IPVS. The
/// backend programs a `FakeIPVSKernel` in memory, and the device addresses and the helper table for
/// real, in the existing namespace NETNS; SERVICES ClusterIP Services × 10 endpoints (as `ipvs-proxy`).
/// Prints, with the phases (`IPVSSyncPhases`) of each:
/// - `first-ms`: the first full sync (empty namespace);
/// - `resync-ms`: SYNCS (default 3) full syncs more that find nothing to repair, the median (the
///   periodic resync: the dump returns every service, nothing is sent).
func ipvsHostSyncWorkload(_ arguments: [String]) async throws {
    guard arguments.count >= 2, let count = Int(arguments[1]), count > 0 else { throw IPVSHostSyncUsage() }
    let resyncs = arguments.count > 2 ? Int(arguments[2]) ?? 3 : 3
    let namespace = arguments[0]
    let options = ProxyOptions(clusterCIDRs: [IPCIDR("10.128.0.0/9")!])
    let ipvs = FakeIPVSKernel()
    let backend = try IPVSBackend(family: .ipv4, settings: IPVSSettings(options: options, namespace: namespace),
                                  ipvs: ipvs, nft: try NFTConnection(namespace: namespace))
    let table = ServiceTable().replacing((0..<count).map { benchService($0, generation: 0) })

    var start = monotonicSeconds()
    try await backend.sync(from: nil, to: table)
    let first = monotonicSeconds() - start
    guard let summary = await backend.lastSync else { throw IPVSHostSyncUsage(problem: "no first sync") }
    print("first-ms=\(twoDecimals(first * 1000)) requests=\(summary.requests) addresses=\(summary.addressesAdded)")
    print("first-phases \(summary.phases)")

    var times: [Double] = []
    for _ in 0..<resyncs {
        start = monotonicSeconds()
        try await backend.sync(from: nil, to: table)
        times.append(monotonicSeconds() - start)
        guard let again = await backend.lastSync, again.requests == 0 else {
            throw IPVSHostSyncUsage(problem: "a resync sent requests: \(String(describing: await backend.lastSync))")
        }
        print("resync-phases \(again.phases)")
    }
    if !times.isEmpty { print("resync-ms=\(twoDecimals(times.sorted()[times.count / 2] * 1000))") }
    print("seconds=\(first)")
}

struct IPVSHostSyncUsage: Error, CustomStringConvertible {
    var problem = "usage: strait-bench ipvs-host-sync NETNS SERVICES [SYNCS]"
    var description: String { problem }
}

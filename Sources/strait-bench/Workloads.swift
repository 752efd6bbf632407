#if canImport(Glibc)
import Glibc
#endif

/// A timed workload: takes its arguments, does the work, prints `seconds=<elapsed>` for the timed part.
typealias BenchWorkload = @Sendable ([String]) async throws -> Void

/// Every workload by the name `scripts/bench` calls it.
let benchWorkloads: [String: BenchWorkload] = [
    "veth": vethWorkload,
    "nft-set": nftSetWorkload,
    "cni-floor": cniFloorWorkload,
    "cni-exec": cniExecWorkload,
    "nft-commit-cost": nftCommitCostWorkload,
    "nft-proxy": nftProxyWorkload,
    "ipvs-proxy": ipvsProxyWorkload,
    "ipvs-host-sync": ipvsHostSyncWorkload,
    "proxy-load": proxyLoadWorkload,
]

/// Seconds since an arbitrary start, from the monotonic clock.
func monotonicSeconds() -> Double {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return Double(now.tv_sec) + Double(now.tv_nsec) / 1e9
}

/// `value` with two decimals, as the workloads print milliseconds (no Foundation here).
func twoDecimals(_ value: Double) -> String {
    let hundredths = Int((value * 100).rounded())
    let fraction = abs(hundredths % 100)
    return "\(hundredths / 100).\(fraction < 10 ? "0" : "")\(fraction)"
}

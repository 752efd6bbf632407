#if canImport(Glibc)
import Glibc
#endif
import Foundation
import StraitStore

/// `overlay-lease STORE KEY VALUE`: opens the store (a SQLite path or `etcd://host:port`), prints
/// `wall=<CLOCK_REALTIME seconds>` right before it writes VALUE at KEY, then `seconds=` for the write.
/// `scripts/bench overlay` takes `wall=` as the moment a node's lease appears, and compares it with the
/// `ip -ts monitor` timestamps of the route, neighbour and FDB entries the agents then program.
/// Opening the store and starting the process are outside the figure. Equivalent: `etcdctl put KEY VALUE`.
func overlayLeaseWorkload(_ arguments: [String]) async throws {
    guard arguments.count == 3 else { throw OverlayLeaseUsage() }
    let store = try await openStore(url: arguments[0])
    var wall = timespec()
    clock_gettime(CLOCK_REALTIME, &wall)
    let start = monotonicSeconds()
    print(String(format: "wall=%ld.%09ld", wall.tv_sec, wall.tv_nsec))
    fflush(stdout)
    _ = try await store.put(arguments[1], value: Data(arguments[2].utf8))
    print("seconds=\(monotonicSeconds() - start)")
    await store.close()
}

private struct OverlayLeaseUsage: Error, CustomStringConvertible {
    var description: String { "usage: strait-bench overlay-lease STORE KEY VALUE" }
}

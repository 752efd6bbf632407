import StraitModel
import StraitNFT
import StraitProxy
import StraitProxyNFTables

#if canImport(Glibc)
import Glibc
#endif

/// `nft-proxy NETNS SERVICES [CHANGES]`: the nftables mode's backend over netlink in the existing
/// namespace NETNS, with SERVICES ClusterIP Services × 10 endpoints (plans as the core makes them):
/// - `full-sync-ms`: the first full sync into an empty namespace (translation, read-back, commit);
/// - `full-commit-ms`: the kernel's part of it: that sync's commit alone (encoding, sending, the
///   kernel applying it into the empty table; the floor);
/// - `endpoint-ms p50 p99`: CHANGES (default 50) syncs that each replace one endpoint of one
///   Service; `endpoint-commit-ms`: the commit alone (the kernel has applied it when the commit's
///   acknowledgements are read: netlink commits are synchronous);
/// - `service-ms`: a new Service with 10 endpoints; `rss-mb`: this process's peak resident set.
/// Leaves the table in place, for `nft list` / `nft -f` comparisons by `scripts/bench`.
func nftProxyWorkload(_ arguments: [String]) async throws {
    guard arguments.count >= 2, let count = Int(arguments[1]), count > 0 else { throw NFTProxyUsage() }
    let changes = arguments.count > 2 ? Int(arguments[2]) ?? 50 : 50
    let kernel = TimedKernel(try NFTConnection(namespace: arguments[0]))
    let options = ProxyOptions(clusterCIDRs: [IPCIDR("10.128.0.0/9")!])
    // As the proxy runs it: a full sync's transaction is not kept once committed.
    let backend = NFTablesBackend(family: .ipv4, options: options, kernel: kernel, keepsLastTransaction: false)

    // Tables made as the sync loop makes them (`replacing` remembers the changed names), so a
    // change's sync compares that port alone, as in `strait proxy`, not every entry.
    var table = ServiceTable().replacing((0..<count).map { benchService($0, generation: 0) })
    var start = monotonicSeconds()
    try await backend.sync(from: nil, to: table)
    let full = monotonicSeconds() - start
    let residentAfterFull = residentMegabytes()
    // The floor: the sync's own commit (encoding, sending, the kernel applying it) into the empty table.
    let fullCommit = kernel.lastCommit

    var syncs: [Double] = [], commits: [Double] = []
    for change in 0..<changes {
        let index = change * 7919 % count
        let next = table.replacing([benchService(index, generation: change + 1)])
        start = monotonicSeconds()
        try await backend.sync(from: table, to: next)
        syncs.append(monotonicSeconds() - start)
        commits.append(kernel.lastCommit)
        guard kernel.lastWasDataOnly else {
            throw NFTProxyUsage(problem: "an endpoint change was not a data-only commit")
        }
        table = next
    }
    let withNew = table.replacing([benchService(count, generation: 0)])
    start = monotonicSeconds()
    try await backend.sync(from: table, to: withNew)
    let service = monotonicSeconds() - start
    let serviceCommit = kernel.lastCommit

    var usage = rusage()
    getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage)
    func ms(_ seconds: Double) -> String { twoDecimals(seconds * 1000) }
    func percentile(_ values: [Double], _ p: Double) -> Double {
        let sorted = values.sorted()
        return sorted[min(sorted.count - 1, Int(Double(sorted.count) * p))]
    }
    print("full-sync-ms=\(ms(full)) full-commit-ms=\(ms(fullCommit))")
    print("endpoint-ms p50=\(ms(percentile(syncs, 0.5))) p99=\(ms(percentile(syncs, 0.99)))")
    print("endpoint-commit-ms p50=\(ms(percentile(commits, 0.5))) p99=\(ms(percentile(commits, 0.99)))")
    print("service-ms=\(ms(service)) service-commit-ms=\(ms(serviceCommit))")
    print("rss-mb=\(usage.ru_maxrss / 1024) rss-after-full-mb=\(residentAfterFull) rss-now-mb=\(residentMegabytes())")
    print("seconds=\(full)")
}

/// Service `index`: cluster IP 10.96.0.0 + index, port 80/TCP, 10 endpoints; generation g replaces
/// its first endpoint with a fresh address. The endpoints are spread over `benchNodes` nodes, as the
/// pods of a cluster this size are (at most 110 pods a node); the bench's own node is `node-0`.
func benchService(_ index: Int, generation: Int) -> ServicePortEntry {
    let name = ServicePortName(namespace: "bench", name: "svc\(index)", port: "http", protocol: .tcp)
    func endpoint(_ n: Int) -> ProxyEndpoint {
        let node = n % benchNodes
        return ProxyEndpoint(address: IPAddress("10.\(128 + (n >> 16) & 127).\((n >> 8) & 255).\(n & 255)")!,
                             port: 8080, isLocal: node == 0, nodeName: "node-\(node)")
    }
    var endpoints = (0..<10).map { endpoint(index * 10 + $0) }
    if generation > 0 { endpoints[0] = endpoint(4_000_000 + generation) }
    let clusterIP = IPAddress("10.\(96 + (index >> 16)).\((index >> 8) & 255).\(index & 255)")!
    let plan = ServicePortPlan(name: name, family: .ipv4, port: 80, clusterIPs: [clusterIP], clusterPool: endpoints,
                               clusterIPTraffic: .forward(.cluster),
                               clusterIPMasquerade: .outside(IPCIDR("10.128.0.0/9")!))
    return ServicePortEntry(name: name, port: 80, clusterIPs: [clusterIP], allEndpoints: endpoints, plans: [plan])
}

/// The nodes the bench's endpoints run on, endpoint n on node n mod 500: the 50,000 endpoints of 5,000
/// Services put 100 pods on each node (a node runs at most 110), those of 44,000 Services 880 (more than a
/// node can run: the local share, and so the hairpin set, is then larger than in a real cluster).
let benchNodes = 500

/// This process's resident set now (`/proc/self/statm`, second field, in pages).
func residentMegabytes() -> Int {
    guard let file = fopen("/proc/self/statm", "r") else { return -1 }
    defer { fclose(file) }
    var size = 0, resident = 0
    guard withUnsafeMutablePointer(to: &size, { size in
        withUnsafeMutablePointer(to: &resident) { resident in
            withVaList([size, resident]) { vfscanf(file, "%ld %ld", $0) }
        }
    }) == 2 else { return -1 }
    return resident * Int(sysconf(Int32(_SC_PAGESIZE))) / (1 << 20)
}

/// The connection, timing each commit.
final class TimedKernel: NFTKernel, @unchecked Sendable {
    private let connection: NFTConnection
    private(set) var lastCommit: Double = 0
    /// Whether the last commit only added or deleted set elements (no rule, chain or set changed).
    private(set) var lastWasDataOnly = false

    init(_ connection: NFTConnection) { self.connection = connection }

    func commit(_ transaction: Transaction) throws(NFTError) {
        let start = monotonicSeconds()
        try connection.commit(transaction)
        lastCommit = monotonicSeconds() - start
        lastWasDataOnly = transaction.changes.allSatisfy { change in
            switch change {
            case .add(.elements), .delete(.elements): true
            default: false
            }
        }
    }

    func list(_ table: Table) throws(NFTError) -> TableContents? { try connection.list(table) }
    func tables(_ family: Family?) throws(NFTError) -> [Table] { try connection.tables(family) }
}

struct NFTProxyUsage: Error, CustomStringConvertible {
    var problem = "usage: strait-bench nft-proxy NETNS SERVICES [CHANGES]"
    var description: String { problem }
}

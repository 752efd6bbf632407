import StraitModel
import StraitNFT
import StraitProxy
import StraitProxyIPTables
import StraitProxyNFTables

/// `proxy-load NETNS iptables|nftables SERVICES TARGET`: programs SERVICES ClusterIP Services × 10
/// endpoints (as `nft-proxy` makes them) with the mode's backend in the existing namespace NETNS,
/// plus `bench/target` (cluster IP 10.95.0.1 port 80) whose one endpoint is TARGET:8080, then exits
/// leaving the rules in place: `scripts/bench` times TCP connects through that cluster IP (the
/// first packet's cost of the dispatch at this size). Its name sorts after every other Service,
/// so the iptables mode's `KUBE-SERVICES` reaches it last, as the newest Service of a big cluster.
/// iptables: the legacy binaries (iptables-nft-restore takes minutes for 20,000 × 10 in one go).
func proxyLoadWorkload(_ arguments: [String]) async throws {
    guard arguments.count == 4, let count = Int(arguments[2]), count >= 0,
          let target = IPAddress(arguments[3]) else { throw ProxyLoadUsage() }
    let options = ProxyOptions(clusterCIDRs: [IPCIDR("10.128.0.0/9")!])
    let backend: any ProxyBackend
    switch arguments[1] {
    case "iptables":
        backend = IPTablesBackend(options: IPTablesRuleOptions(family: .ipv4, proxy: options),
                                  tools: IPTablesRestore(flavor: .legacy, family: .ipv4, namespace: arguments[0]))
    case "nftables":
        backend = NFTablesBackend(family: .ipv4, options: options, kernel: try NFTConnection(namespace: arguments[0]),
                                  keepsLastTransaction: false)
    default:
        throw ProxyLoadUsage()
    }
    let name = ServicePortName(namespace: "bench", name: "target", port: "http", protocol: .tcp)
    let clusterIP = IPAddress("10.95.0.1")!
    let endpoints = [ProxyEndpoint(address: target, port: 8080)]
    let plan = ServicePortPlan(name: name, family: .ipv4, port: 80, clusterIPs: [clusterIP], clusterPool: endpoints,
                               clusterIPTraffic: .forward(.cluster),
                               clusterIPMasquerade: .outside(IPCIDR("10.128.0.0/9")!))
    let entries = (0..<count).map { benchService($0, generation: 0) }
        + [ServicePortEntry(name: name, port: 80, clusterIPs: [clusterIP], allEndpoints: endpoints, plans: [plan])]
    let start = monotonicSeconds()
    try await backend.sync(from: nil, to: ServiceTable(entries))
    print("seconds=\(monotonicSeconds() - start)")
}

struct ProxyLoadUsage: Error, CustomStringConvertible {
    var description: String { "usage: strait-bench proxy-load NETNS iptables|nftables SERVICES TARGET-ADDRESS" }
}

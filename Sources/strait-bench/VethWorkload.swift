import StraitNetlink

/// `veth NETNS COUNT`: creates COUNT veth pairs (`bv<i>a`/`bv<i>b`) inside the existing namespace
/// NETNS through StraitNetlink, then deletes them (one end each), and prints `seconds=<elapsed>`
/// for the whole create+delete. One socket, opened in NETNS before timing starts, serves every request.
/// Compared with `ip -n NETNS -batch FILE` doing the same `link add`/`link del` lines.
func vethWorkload(_ arguments: [String]) throws {
    guard arguments.count == 2, let count = Int(arguments[1]), count >= 0 else {
        throw VethWorkloadUsage()
    }
    let socket = try NetlinkSocket(namespace: arguments[0])
    let specs = (0..<count).map { LinkSpec.veth("bv\($0)a", peer: "bv\($0)b") }
    let start = monotonicSeconds()
    for spec in specs { try socket.addLink(spec) }
    for spec in specs { try socket.deleteLink(named: spec.name) }
    let elapsed = monotonicSeconds() - start
    print("seconds=\(elapsed)")
}

private struct VethWorkloadUsage: Error, CustomStringConvertible {
    var description: String { "usage: strait-bench veth NETNS COUNT" }
}

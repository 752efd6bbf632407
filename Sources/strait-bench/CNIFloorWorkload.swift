import StraitNetlink

/// `cni-floor NODE_NETNS POD_NETNS COUNT`: the kernel operations of one strait-cni ADD and DEL, issued
/// COUNT times in a row from one process — no exec, no IPAM, no files, no lookups — so `scripts/bench cni`
/// can show how far a plugin's ADD is from what the kernel itself needs. Two netlink sockets (node and
/// pod namespace) and the bridge `floor0` (10.253.0.1/16) are made before timing, as a warm node has them.
/// Prints `<ADD µs> <DEL µs>` per pod, the format of the plugins' rows, then `seconds=` for the whole.
/// Equivalent per pod: `ip link add vethfloor mtu 1450 type veth peer name eth0 netns POD;
/// ip link set vethfloor master floor0; ip -n POD link set eth0 mtu 1450 address MAC;
/// ip -n POD addr add ADDR/16 dev eth0; ip -n POD link set eth0 up;
/// ip -n POD route add default via 10.253.0.1 dev eth0; ip link set vethfloor up` — then `ip link del vethfloor`.
func cniFloorWorkload(_ arguments: [String]) throws {
    guard arguments.count == 3, let count = Int(arguments[2]), count > 0, count < 60_000 else {
        throw CNIFloorUsage()
    }
    let (nodeNamespace, podNamespace) = (arguments[0], arguments[1])
    let node = try NetlinkSocket(namespace: nodeNamespace)
    let pod = try NetlinkSocket(namespace: podNamespace)
    let bridge = "floor0", hostName = "vethfloor", mtu: UInt32 = 1450
    try node.addLink(LinkSpec(name: bridge, kind: .bridge, mac: "02:5b:04:00:00:01", up: true))
    defer { try? node.deleteLink(named: bridge) }
    try node.addAddress("10.253.0.1/16", to: bridge, skipDAD: true)

    let podPath = podNamespace.hasPrefix("/") ? podNamespace : "/run/netns/\(podNamespace)"
    let start = monotonicSeconds()
    for index in 0..<count {
        let third = (index + 2) >> 8, fourth = (index + 2) & 0xff
        let added = monotonicSeconds()
        var spec = LinkSpec.veth(hostName, peer: "eth0", peerNamespace: podPath)
        spec.mtu = mtu
        try node.addLink(spec)
        try node.setLink(hostName, master: bridge)
        try pod.setLink("eth0", mtu: mtu)
        try pod.setLink("eth0", mac: "0a:58:0a:fd:\(hex(third)):\(hex(fourth))")
        try pod.addAddress("10.253.\(third).\(fourth)/16", to: "eth0", skipDAD: true)
        try pod.setLink("eth0", up: true)
        try pod.addRoute(RouteSpec(destination: "0.0.0.0/0", gateway: "10.253.0.1", device: "eth0"))
        try node.setLink(hostName, up: true)
        let deleted = monotonicSeconds()
        try node.deleteLink(named: hostName)
        let done = monotonicSeconds()
        print("\(Int((deleted - added) * 1e6)) \(Int((done - deleted) * 1e6))")
    }
    print("seconds=\(monotonicSeconds() - start)")
}

private func hex(_ byte: Int) -> String {
    let text = String(byte, radix: 16)
    return text.count == 1 ? "0" + text : text
}

private struct CNIFloorUsage: Error, CustomStringConvertible {
    var description: String { "usage: strait-bench cni-floor NODE_NETNS POD_NETNS COUNT (COUNT 1-59999)" }
}

#if canImport(Glibc)
import Glibc
#endif
import StraitModel
import StraitSystem
import StraitNetlink

/// Wires one pod into the node: the veth pair (pod end `ifname` in the pod's namespace, host end
/// on the bridge), the pod's addresses and routes, the bridge's gateway addresses. Two netlink
/// sockets, one in each namespace, carry every request.
struct PodInterface {
    let host: NetlinkSocket
    let pod: NetlinkSocket?
    let netns: String
    let ifname: String
    let hostName: String

    /// Opens the sockets. A missing pod namespace is nil here (DEL must still succeed without it);
    /// DEL, which only deletes the host end, does not open the pod's at all.
    init(netns: String, key: AttachmentKey, openPod: Bool = true) throws(CNIError) {
        do { host = try NetlinkSocket() } catch {
            throw CNIError(.kernelFailure, "cannot open a netlink socket on the node", details: "\(error)")
        }
        if !openPod || netns.isEmpty || access(netns, F_OK) != 0 {
            pod = nil
        } else {
            // strait-cni is one thread: it visits the pod's namespace itself rather than start one.
            do { pod = try NetlinkSocket(namespace: netns, onCallingThread: true) } catch {
                throw CNIError(.invalidEnvironment, "CNI_NETNS \(netns) is not a network namespace", details: "\(error)")
            }
        }
        self.netns = netns
        ifname = key.ifname
        hostName = hostVethName(for: key)
    }

    /// True when `ifname` exists in the pod's namespace.
    var podInterfaceExists: Bool { (try? pod?.link(named: ifname)) != nil }

    /// Creates the bridge if needed, brings it up, and gives it each pool's gateway address. An
    /// address of an older subnet left on the bridge is replaced, not left to break new pods.
    /// Returns the bridge's index. On a node whose bridge is already up with its addresses this is
    /// the bridge's lookup and one refused address per pool: the bridge's addresses are listed only
    /// when one had to be added (its subnet changed, or the bridge is new), to find an older one.
    /// Equivalent: `ip link add BRIDGE type bridge; ip addr add GW/LEN dev BRIDGE; ip link set BRIDGE up`.
    func ensureBridge(_ network: PodNetwork) throws(CNIError) -> Int32 {
        var index: Int32 = 0
        try kernel("create bridge \(network.bridge)") {
            var bridge = try? host.link(named: network.bridge)
            if bridge == nil {
                do { try host.addLink(LinkSpec(name: network.bridge, kind: .bridge, up: true)) } catch let error as NetlinkError where error.code == .objectExists {}
                bridge = try host.link(named: network.bridge)
            }
            guard let bridge else { return }
            index = bridge.index
            for pool in network.pools {
                let wanted = pool.interfaceAddress(pool.gateway)
                do {
                    try host.addAddress(wanted, toLink: bridge.index, skipDAD: true)
                } catch let error as NetlinkError where error.code == .objectExists {
                    continue
                }
                for stale in try host.addresses(onLink: bridge.index).map(\.address)
                where stale != wanted && isSameFamily(stale, pool) && !isLinkLocal(stale) {
                    try? host.deleteAddress(stale, from: network.bridge)
                }
            }
            if !bridge.up { try host.setLink(network.bridge, up: true) }
        }
        return index
    }

    /// Creates the veth pair: the host end here (not yet on the bridge), the pod end `ifname` in
    /// the pod's namespace with its MTU and MAC. A host end left by an ADD that was killed half-way
    /// (the name is this attachment's) is deleted and the pair made again.
    /// Equivalent: `ip link add HOST mtu M type veth peer name IFNAME netns NETNS mtu M address MAC`.
    func createPair(_ network: PodNetwork, mac: String) throws(CNIError) {
        guard pod != nil else { throw CNIError(.invalidEnvironment, "the pod's network namespace does not exist") }
        var spec = LinkSpec.veth(hostName, peer: ifname, peerNamespace: netns)
        spec.mtu = UInt32(network.mtu)
        spec.peerMTU = UInt32(network.mtu)
        spec.peerMAC = mac
        try kernel("create veth \(hostName) / \(ifname)") {
            do { try host.addLink(spec) } catch let error as NetlinkError where error.code == .objectExists {
                try? host.deleteLink(named: hostName)
                try host.addLink(spec)
            }
        }
    }

    /// Puts the host end on the bridge, gives the pod end its addresses, brings it up, adds its
    /// routes and brings the host end up. The pod end's index (`IFLA_LINK`) and the host end's MAC
    /// come from one lookup of the host end. The carrier of the pair and the bridge comes up some
    /// time after, as with any link: ADD does not wait for it (a second lookup here once only
    /// delayed ADD enough that a test comparing the node's links saw it settled).
    func configure(_ network: PodNetwork, bridgeIndex: Int32, leases: [Lease], mac: String) throws(CNIError)
        -> (hostMAC: String?, podMAC: String) {
        guard let pod else { throw CNIError(.invalidEnvironment, "the pod's network namespace does not exist") }
        var hostEnd: LinkInfo?
        try kernel("attach \(hostName) to \(network.bridge)") {
            try host.setLink(hostName, masterIndex: bridgeIndex)
            hostEnd = try host.link(named: hostName)
        }
        guard let podIndex = hostEnd?.peerIndex else {
            throw CNIError(.kernelFailure, "configure \(ifname) in the pod failed",
                           details: "\(hostName) names no peer")
        }
        try kernel("configure \(ifname) in the pod") {
            for lease in leases {
                let pool = network.pools.first { $0.subnet == lease.subnet }!
                try pod.addAddress(pool.interfaceAddress(lease.address), toLink: podIndex, skipDAD: true)
            }
            try pod.setLink(ifname, up: true)
            for route in Self.podRoutes(network, leases: leases) {
                let spec = RouteSpec(destination: route.dst, gateway: route.gw, device: ifname)
                try pod.addRoute(spec, deviceIndex: podIndex)
            }
        }
        try kernel("bring up \(hostName) on \(network.bridge)") { try host.setLink(hostName, up: true) }
        if network.hairpinMode { try? writeSysfs("/sys/class/net/\(hostName)/brport/hairpin_mode", "1") }
        return (hostEnd?.mac, mac)
    }

    /// Takes the host end down, so the bridge stops forwarding to it; a missing link is fine.
    /// (Not also `nomaster`: leaving the bridge costs the kernel an RCU grace period, which the
    /// deletion right after pays anyway.) Equivalent: `ip link set HOST down`.
    func detach() {
        try? host.setLink(hostName, up: false)
    }

    /// Deletes the host end (and with it the pod end). A missing link is success.
    func remove() throws(CNIError) {
        do { try host.deleteLink(named: hostName) } catch {
            if (try? host.link(named: hostName)) != nil {
                throw CNIError(.kernelFailure, "cannot delete \(hostName)", details: "\(error)")
            }
        }
    }

    /// The pod's routes: the default route (or only the cluster networks) via the gateway.
    static func podRoutes(_ network: PodNetwork, leases: [Lease]) -> [CNIResult.Route] {
        network.pools.flatMap { pool -> [CNIResult.Route] in
            guard leases.contains(where: { $0.subnet == pool.subnet }) else { return [] }
            let gateway = pool.gateway.description
            if network.isDefaultGateway {
                return [CNIResult.Route(dst: pool.family == .ipv4 ? "0.0.0.0/0" : "::/0", gw: gateway)]
            }
            return network.clusterNetworks.filter { isSameFamily($0, pool) }.map { CNIResult.Route(dst: $0, gw: gateway) }
        }
    }

    private func kernel(_ step: String, _ body: () throws -> Void) throws(CNIError) {
        do { try body() } catch {
            throw CNIError(.kernelFailure, "\(step) failed", details: "\(error)")
        }
    }
}

/// A stable MAC from the pod's first address: `0a:58` and the IPv4 address (or the last four
/// bytes of the IPv6 one), so a pod that comes back with its address keeps its MAC and neighbours'
/// ARP caches stay right.
func podMAC(for leases: [Lease]) -> String {
    let bytes = leases.first.map { Array($0.address.bytes.suffix(4)) } ?? [0, 0, 0, 0]
    return HexDigits.text(bytes: [0x0a, 0x58] + bytes, separator: UInt8(ascii: ":"))
}

private func isSameFamily(_ cidr: String, _ pool: AddressPool) -> Bool {
    cidr.contains(":") == (pool.family == .ipv6)
}

private func isLinkLocal(_ cidr: String) -> Bool { cidr.lowercased().hasPrefix("fe80:") }

/// Writes a value into a sysctl or sysfs file of the current network namespace.
func writeSysfs(_ path: String, _ value: String) throws(FileError) {
    let fd = try fileCall("open", path) { open(path, O_WRONLY | O_CLOEXEC) }
    defer { close(fd) }
    _ = try fileCall("write", path) { Int32(write(fd, value, value.utf8.count)) }
}

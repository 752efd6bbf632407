#if canImport(Glibc)
import Glibc
#endif
import StraitModel
import StraitSystem
import StraitNetlink

/// The ADD, DEL, CHECK and GC steps for one attachment, in the order that keeps the node
/// consistent: nothing is left half-done by a failed ADD, and DEL works from any state.
struct PodSetup {
    let env: CNIEnvironment
    let config: NetworkConfig
    let key: AttachmentKey
    let ipam: IPAM

    /// ADD: lease addresses, wire the pod, map its host ports and masquerade it if asked; undo all
    /// of it if a step fails.
    func add() throws(CNIError) -> CNIResult {
        let network = try PodNetwork(config: config)
        let interface = try PodInterface(netns: env.netns, key: key)
        guard interface.pod != nil else {
            throw CNIError(.invalidEnvironment, "CNI_NETNS \(env.netns) does not exist")
        }
        if interface.podInterfaceExists {
            throw CNIError(.interfaceExists, "interface \(env.ifname) already exists in \(env.netns)")
        }
        let requested = try requestedAddresses()
        let requestedMAC = try requestedMAC()
        let mappings = config.runtimeConfig?.portMappings ?? []
        // Unset, ipMasq follows the overlay as flannel's plugin does: pods masquerade themselves
        // only when the overlay says it does not (`STRAIT_IPMASQ=false` / `FLANNEL_IPMASQ=false`).
        let masquerade = config.ipMasq ?? (network.overlayMasquerades == false)
        // The lease first: a refused address or a full pool fails here with nothing to undo. It runs on
        // this thread: the lease book is a small file written without fsync, and handing it to another
        // thread costs more (thread start-up, and a wait for a CPU on a busy node) than it could overlap.
        let leases = try ipam.allocate(key, pools: network.pools, requested: requested, portMappings: mappings,
                                       masquerade: masquerade)
        do throws(CNIError) {
            let mac = requestedMAC ?? podMAC(for: leases)
            try interface.createPair(network, mac: mac)
            let bridgeIndex = try interface.ensureBridge(network)
            try enableForwarding(network)
            let macs = try interface.configure(network, bridgeIndex: bridgeIndex, leases: leases, mac: mac)
            if !mappings.isEmpty {
                try HostPorts.add(key, mappings: mappings, podAddresses: leases.map(\.address), bridge: network.bridge)
            }
            if masquerade { try PodMasquerade.add(key, leases: leases, clusterNetworks: network.clusterNetworks) }
            return result(network, leases: leases, hostMAC: macs.hostMAC, podMAC: macs.podMAC, hostName: interface.hostName)
        } catch {
            // Undo in reverse, the lease this ADD took last.
            try? HostPorts.remove(key, leases: leases)
            try? PodMasquerade.remove(key, leases: leases.filter { $0.masquerade == true })
            try? interface.remove()
            _ = try? ipam.release(key)
            throw error
        }
    }

    /// DEL: remove host ports and masquerading, the veth pair and the leases. Each part missing already is fine;
    /// the leases go even when the pod's namespace is gone.
    ///
    /// The host end is first taken down, so the old pod can no longer answer for its address on the
    /// bridge; then the lease is released while the kernel deletes the veth pair (the slow part).
    static func delete(env: CNIEnvironment, config: NetworkConfig, key: AttachmentKey, ipam: IPAM) throws(CNIError) {
        let leases = try ipam.leases().filter { $0.key == key }
        try HostPorts.remove(key, leases: leases)
        try PodMasquerade.remove(key, leases: leases.filter { $0.masquerade == true })
        let interface = try PodInterface(netns: env.netns, key: key, openPod: false)
        interface.detach()
        let release = BackgroundWork { [ipam, key] () throws(CNIError) in try ipam.release(key) }
        let removal: CNIError?
        do throws(CNIError) { try interface.remove(); removal = nil } catch { removal = error }
        _ = try release.wait()
        if let removal { throw removal }
    }

    /// CHECK: the pod's interface, addresses and routes are as the ADD result says, and the leases hold.
    func check() throws(CNIError) {
        guard let previous = config.prevResult else {
            throw CNIError(.invalidNetworkConfig, "CHECK needs prevResult (the ADD result)")
        }
        let interface = try PodInterface(netns: env.netns, key: key)
        guard let pod = interface.pod else {
            throw CNIError(.checkFailed, "the pod's namespace \(env.netns) does not exist")
        }
        let leased = Set(try ipam.leases().filter { $0.key == key }.map(\.address.description))
        let link: LinkInfo
        do { link = try pod.link(named: env.ifname) } catch {
            if leased.isEmpty {
                throw CNIError(.unknownContainer, "no attachment \(key.containerID)/\(key.ifname) is known")
            }
            throw CNIError(.checkFailed, "interface \(env.ifname) is missing from \(env.netns)")
        }
        let sandboxIndex = previous.interfaces?.firstIndex { $0.name == env.ifname && $0.sandbox != nil }
        if let index = sandboxIndex, let mac = previous.interfaces?[index].mac, mac.lowercased() != link.mac?.lowercased() {
            throw CNIError(.checkFailed, "interface \(env.ifname) has MAC \(link.mac ?? "none"), the ADD result says \(mac)")
        }
        let present: Set<String>
        do { present = Set(try pod.addresses(of: env.ifname).map(\.address)) } catch {
            throw CNIError(.checkFailed, "cannot list the addresses of \(env.ifname)", details: "\(error)")
        }
        for ip in previous.ips ?? [] where ip.interface == nil || ip.interface == sandboxIndex {
            guard present.contains(ip.address) else {
                throw CNIError(.checkFailed, "address \(ip.address) is missing from \(env.ifname)")
            }
            let bare = String(ip.address.prefix { $0 != "/" })
            guard leased.contains(bare) else {
                throw CNIError(.checkFailed, "address \(bare) is not leased to \(key.containerID)/\(key.ifname)")
            }
        }
        let routes: [RouteInfo]
        do { routes = try pod.routes() } catch {
            throw CNIError(.checkFailed, "cannot list the routes of \(env.netns)", details: "\(error)")
        }
        for route in previous.routes ?? [] {
            let found = routes.contains { $0.destination == route.dst && (route.gw == nil || $0.gateway == route.gw) }
            guard found else {
                throw CNIError(.checkFailed, "route to \(route.dst)\(route.gw.map { " via \($0)" } ?? "") is missing from \(env.netns)")
            }
        }
    }

    /// GC: release every lease (with its host-port mappings) and host veth whose attachment is not valid.
    static func collectGarbage(config: NetworkConfig, keeping valid: Set<AttachmentKey>, ipam: IPAM) throws(CNIError) {
        let stale = try ipam.collectGarbage(keeping: valid)
        for key in Set(stale.map(\.key)) {
            let leases = stale.filter { $0.key == key }
            try? HostPorts.remove(key, leases: leases)
            try? PodMasquerade.remove(key, leases: leases.filter { $0.masquerade == true })
        }
        let host: NetlinkSocket
        let links: [LinkInfo]
        do {
            host = try NetlinkSocket()
            links = try host.links()
        } catch {
            throw CNIError(.kernelFailure, "cannot list the node's links", details: "\(error)")
        }
        // Host ends are recognised by their derived names; one from an ADD killed before it reached
        // the bridge is not on the bridge yet, so the bridge is not part of the test.
        let validNames = Set(valid.map(hostVethName(for:)))
        for link in links where link.kind == "veth" && isHostVethName(link.name) && !validNames.contains(link.name) {
            try? host.deleteLink(named: link.name)
        }
    }

    /// The pod's MAC from the `mac` capability or `CNI_ARGS` `MAC=`, as the bridge plugin takes it.
    private func requestedMAC() throws(CNIError) -> String? {
        if let mac = config.runtimeConfig?.mac { return mac.lowercased() }
        guard let mac = env.arg("MAC") else { return nil }
        guard NetworkConfig.isUnicastMAC(mac) else {
            throw CNIError(.invalidEnvironment,
                           "CNI_ARGS MAC=\(mac) is not a unicast MAC address like 0a:58:0a:f4:01:05")
        }
        return mac.lowercased()
    }

    private func requestedAddresses() throws(CNIError) -> [IPAddress] {
        var texts = env.arg("IP").map { $0.split(separator: ",").map(String.init) } ?? []
        texts += config.runtimeConfig?.ips ?? []
        var addresses: [IPAddress] = []
        for text in texts {
            let bare = text.prefix { $0 != "/" }
            guard let address = IPAddress(String(bare)) else {
                throw CNIError(.invalidNetworkConfig, "requested address \"\(text)\" is not an IP address")
            }
            addresses.append(address)
        }
        return addresses
    }

    /// Pods reach beyond the node only when the node forwards.
    /// Equivalent: `sysctl -w net.ipv4.ip_forward=1` (and IPv6 forwarding for IPv6 pools).
    private func enableForwarding(_ network: PodNetwork) throws(CNIError) {
        for pool in network.pools {
            let path = pool.family == .ipv4 ? "/proc/sys/net/ipv4/ip_forward" : "/proc/sys/net/ipv6/conf/all/forwarding"
            do throws(FileError) { try writeSysfs(path, "1") } catch {
                throw CNIError(.ioFailure, "cannot turn on forwarding", details: error.description)
            }
        }
    }

    private func result(_ network: PodNetwork, leases: [Lease], hostMAC: String?, podMAC: String, hostName: String) -> CNIResult {
        let interfaces = [
            CNIResult.Interface(name: hostName, mac: hostMAC, mtu: network.mtu, sandbox: nil),
            CNIResult.Interface(name: env.ifname, mac: podMAC, mtu: network.mtu, sandbox: env.netns),
        ]
        let ips = leases.map { lease in
            let pool = network.pools.first { $0.subnet == lease.subnet }!
            return CNIResult.IPConfig(address: pool.interfaceAddress(lease.address), gateway: pool.gateway.description, interface: 1)
        }
        return CNIResult(cniVersion: config.cniVersion, interfaces: interfaces, ips: ips,
                         routes: PodInterface.podRoutes(network, leases: leases),
                         dns: config.runtimeConfig?.dns ?? config.dns)
    }
}

import StraitModel
import StraitNetlink

/// The VXLAN backend: one device (`strait.<VNI>`, or flannel's `flannel.<VNI>` on flannel's
/// network) addressed `<subnet>.0/32`, learning off unless `Learning`, and per remote node a
/// permanent neighbour entry, an FDB entry to its public IP, then the on-link route to its subnet via
/// its `.0` (last, so the kernel never has to ARP for the gateway). With `DirectRouting`, a node on
/// this node's L2 segment gets a plain route via its public IP instead, as host-gw would.
///
/// Equivalent, per remote node 10.244.2.0/24 at 192.168.100.2 with VTEP MAC M:
///
///     ip neigh replace 10.244.2.0 lladdr M dev strait.1 nud permanent
///     bridge fdb replace M dev strait.1 dst 192.168.100.2 self permanent
///     ip route replace 10.244.2.0/24 via 10.244.2.0 dev strait.1 onlink
///     # DirectRouting, same segment: ip route replace 10.244.2.0/24 via 192.168.100.2 dev eth0
///
/// Dual stack adds a second device (`strait-v6.<VNI>`) over the nodes' IPv6 addresses, with its own
/// MAC, addressed `<IPv6 subnet>::/128`, and the same three entries per node for IPv6 subnets
/// (DirectRouting applies to IPv4 only; IPv6 is always encapsulated).
public struct VXLANBackend: OverlayBackend {
    /// VXLAN over IPv4 costs 50 bytes: outer IPv4 (20), UDP (8), VXLAN (8), inner Ethernet (14).
    public static let encapsulationOverhead = BackendConfig.vxlanOverhead
    /// Over IPv6 the outer header is 40 bytes: 70 in all.
    public static let ipv6EncapsulationOverhead = 70

    /// The IPv6 device of a dual-stack node.
    public struct IPv6Side: Sendable, Hashable {
        public var device: String
        public var vtepMAC: String
        public var publicIP: IPv6Address
        public init(device: String, vtepMAC: String, publicIP: IPv6Address) {
            self.device = device
            self.vtepMAC = vtepMAC
            self.publicIP = publicIP
        }
    }

    public let device: String
    public let options: BackendConfig
    public let vtepMAC: String
    public let underlay: Underlay
    public let ipv6: IPv6Side?
    private let netlink: NetlinkSocket

    public init(device: String, options: BackendConfig, vtepMAC: String, underlay: Underlay, ipv6: IPv6Side? = nil,
                netlink: NetlinkSocket) {
        self.device = device
        self.options = options
        self.vtepMAC = vtepMAC
        self.underlay = underlay
        self.ipv6 = ipv6
        self.netlink = netlink
    }

    public var vni: UInt32 { options.vni }
    public var port: UInt16 { options.port }
    public var type: BackendType { .vxlan }
    /// flannel's arithmetic: the underlay MTU (or the `MTU` option) less the encapsulation.
    /// flannel's arithmetic: the underlay MTU (or the `MTU` option) less the encapsulation; dual
    /// stack takes the IPv6 tunnel's larger overhead, so pods fit through both devices.
    public var podMTU: Int {
        let overhead = ipv6 == nil ? Self.encapsulationOverhead : Self.ipv6EncapsulationOverhead
        return underlay.mtu(override: options.mtu) - overhead
    }

    public func configure(_ own: SubnetLease) throws(OverlayError) {
        try configureIPv4(own.subnet)
        if let ipv6, let subnet = own.ipv6Subnet { try configure(ipv6, subnet) }
    }

    /// The IPv6 device: `ip link add strait-v6.1 type vxlan id 1 local fd00::1 dstport 8472 nolearning`,
    /// `ip addr add fd00:10:244:1::/128 dev strait-v6.1`.
    private func configure(_ side: IPv6Side, _ subnet: IPv6CIDR) throws(OverlayError) {
        let address = "\(subnet.network)/128"
        let mtu = UInt32(underlay.mtu(override: options.mtu) - Self.ipv6EncapsulationOverhead)
        do {
            if let existing = try? netlink.link(named: side.device), existing.kind != "vxlan" {
                try netlink.deleteLink(named: side.device)
            }
            if let existing = try? netlink.link(named: side.device) {
                if existing.mac?.lowercased() != side.vtepMAC { try netlink.setLink(side.device, mac: side.vtepMAC) }
                if existing.mtu != mtu { try netlink.setLink(side.device, mtu: mtu) }
            } else {
                let spec = VXLANSpec(vni: vni, port: port, local: side.publicIP.description, device: underlay.interface,
                                     learning: options.learning, gbp: options.gbp)
                try netlink.addLink(LinkSpec(name: side.device, kind: .vxlan(spec), mtu: mtu, mac: side.vtepMAC))
            }
            for stale in try netlink.addresses(of: side.device)
            where stale.isIPv6 && stale.scope == 0 && stale.address != address {
                try netlink.deleteAddress(stale.address, from: side.device)
            }
            if !(try netlink.addresses(of: side.device)).contains(where: { $0.address == address }) {
                try netlink.addAddress(address, to: side.device, skipDAD: true)
            }
            try netlink.setLink(side.device, up: true)
        } catch {
            throw OverlayError(.kernel, "cannot set up \(side.device) (VNI \(vni), port \(port), MAC \(side.vtepMAC), "
                + "local \(side.publicIP)): \(error)")
        }
    }

    private func configureIPv4(_ subnet: IPv4CIDR) throws(OverlayError) {
        let address = "\(subnet.network)/32"
        do {
            if let existing = try? netlink.link(named: device), existing.kind != "vxlan" {
                try netlink.deleteLink(named: device)
            }
            if let existing = try? netlink.link(named: device) {
                if existing.mac?.lowercased() != vtepMAC { try netlink.setLink(device, mac: vtepMAC) }
                if existing.mtu != UInt32(podMTU) { try netlink.setLink(device, mtu: UInt32(podMTU)) }
            } else {
                let spec = VXLANSpec(vni: vni, port: port, local: underlay.publicIP.description,
                                     device: underlay.interface, learning: options.learning, gbp: options.gbp)
                try netlink.addLink(LinkSpec(name: device, kind: .vxlan(spec), mtu: UInt32(podMTU), mac: vtepMAC))
            }
            for stale in try netlink.addresses(of: device) where !stale.isIPv6 && stale.address != address {
                try netlink.deleteAddress(stale.address, from: device)
            }
            if !(try netlink.addresses(of: device)).contains(where: { $0.address == address }) {
                try netlink.addAddress(address, to: device)
            }
            try netlink.setLink(device, up: true)
        } catch {
            throw OverlayError(.kernel, "cannot set up \(device) (VNI \(vni), port \(port), MAC \(vtepMAC)): \(error)")
        }
    }

    public func isIntact() -> Bool {
        ([device] + (ipv6.map { [$0.device] } ?? [])).allSatisfy { name in
            guard let link = try? netlink.link(named: name) else { return false }
            return link.kind == "vxlan" && link.up
        }
    }

    public func refusal(for lease: SubnetLease) -> String? {
        if lease.backendType != BackendType.vxlan.rawValue {
            return "lease \(lease.subnet) of \(lease.publicIP) uses backend \(lease.backendType), this node runs vxlan"
        }
        if lease.vtepMAC == nil { return "lease \(lease.subnet) of \(lease.publicIP) has no VtepMAC" }
        if let remoteVNI = lease.vni, remoteVNI != vni {
            return "lease \(lease.subnet) of \(lease.publicIP) uses VNI \(remoteVNI), this node \(vni)"
        }
        if ipv6 != nil, let subnet = lease.ipv6Subnet, lease.publicIPv6 == nil || lease.ipv6VtepMAC == nil {
            return "dual-stack lease \(lease.subnet) & \(subnet) of \(lease.publicIP) "
                + "has no PublicIPv6 or IPv6 VtepMAC"
        }
        return nil
    }

    /// Whether `lease` is reached by a plain route (DirectRouting and the node on this segment).
    func isDirect(_ lease: SubnetLease) -> Bool { options.directRouting && underlay.isOnLink(lease.publicIP) }

    public func add(_ lease: SubnetLease) throws(OverlayError) {
        try addIPv4(lease)
        guard ipv6 != nil, lease.ipv6Subnet != nil else { return }
        do { try addIPv6(lease) } catch {
            remove(lease)
            throw error
        }
    }

    private func addIPv6(_ lease: SubnetLease) throws(OverlayError) {
        guard let ipv6, let entries = IPv6Entries(lease, device: ipv6.device) else { return }
        var done: [() -> Void] = []
        do {
            try netlink.setNeighbour(entries.neighbour)
            done.append { try? netlink.deleteNeighbour(entries.neighbour) }
            try netlink.replaceFDB(entries.fdb)
            done.append { try? netlink.deleteFDB(entries.fdb) }
            try netlink.replaceRoute(entries.route)
        } catch {
            for undo in done.reversed() { undo() }
            let what = "\(entries.route.destination) via \(entries.fdb.destination)"
            throw OverlayError(.kernel, "cannot program \(what): \(error)")
        }
    }

    /// The IPv6 neighbour, FDB entry and route of a dual-stack lease.
    private struct IPv6Entries {
        var neighbour: NeighbourSpec
        var fdb: FDBEntry
        var route: RouteSpec

        init?(_ lease: SubnetLease, device: String) {
            guard let subnet = lease.ipv6Subnet, let mac = lease.ipv6VtepMAC, let publicIP = lease.publicIPv6 else {
                return nil
            }
            let vtep = subnet.network.description
            neighbour = NeighbourSpec(address: vtep, mac: mac, device: device)
            fdb = FDBEntry(mac: mac, device: device, destination: publicIP.description)
            route = RouteSpec(destination: subnet.description, gateway: vtep, device: device, onLink: true)
        }
    }

    private func addIPv4(_ lease: SubnetLease) throws(OverlayError) {
        if isDirect(lease) {
            removeEncapsulated(lease)
            do { try netlink.replaceRoute(directRoute(lease)) } catch {
                throw OverlayError(.kernel, "cannot route \(lease.subnet) directly via \(lease.publicIP): \(error)")
            }
            return
        }
        guard let mac = lease.vtepMAC else { throw OverlayError(.kernel, refusal(for: lease) ?? "no VtepMAC") }
        let neighbour = NeighbourSpec(address: lease.vtepAddress.description, mac: mac, device: device)
        let fdb = FDBEntry(mac: mac, device: device, destination: lease.publicIP.description)
        var done: [() -> Void] = []
        do {
            try netlink.setNeighbour(neighbour)
            done.append { try? netlink.deleteNeighbour(neighbour) }
            try netlink.replaceFDB(fdb)
            done.append { try? netlink.deleteFDB(fdb) }
            try netlink.replaceRoute(route(lease))
        } catch {
            for undo in done.reversed() { undo() }
            throw OverlayError(.kernel, "cannot program \(lease.subnet) via \(lease.publicIP): \(error)")
        }
    }

    public func remove(_ lease: SubnetLease) {
        if options.directRouting { try? netlink.deleteRoute(directRoute(lease)) }
        removeEncapsulated(lease)
        if let ipv6, let entries = IPv6Entries(lease, device: ipv6.device) {
            try? netlink.deleteRoute(entries.route)
            try? netlink.deleteFDB(entries.fdb)
            try? netlink.deleteNeighbour(entries.neighbour)
        }
    }

    private func removeEncapsulated(_ lease: SubnetLease) {
        try? netlink.deleteRoute(route(lease))
        guard let mac = lease.vtepMAC else { return }
        try? netlink.deleteFDB(FDBEntry(mac: mac, device: device, destination: lease.publicIP.description))
        try? netlink.deleteNeighbour(NeighbourSpec(address: lease.vtepAddress.description, mac: mac, device: device))
    }

    public func removeStaleEntries(keeping table: RouteTable, network: IPv4CIDR) -> [String] {
        var devices = [device]
        if options.directRouting { devices.append(underlay.interface) }
        let sweep = StaleRoutes(netlink: netlink)
        var removed = sweep.remove(on: devices, inside: network, keeping: table).map { "route \($0)" }
        if let ipv6 { removed += sweep.removeIPv6(on: ipv6.device, keeping: table).map { "route \($0)" } }
        var wanted = StaleNeighbours.Wanted(), wanted6 = StaleNeighbours.Wanted()
        for lease in table.leases.values {
            if !isDirect(lease), let mac = lease.vtepMAC {
                wanted.add(NeighbourSpec(address: lease.vtepAddress.description, mac: mac, device: device),
                           FDBEntry(mac: mac, device: device, destination: lease.publicIP.description))
            }
            if let ipv6, let entries = IPv6Entries(lease, device: ipv6.device) {
                wanted6.add(entries.neighbour, entries.fdb)
            }
        }
        let neighbours = StaleNeighbours(netlink: netlink)
        removed += neighbours.remove(on: device, keeping: wanted)
        if let ipv6 { removed += neighbours.remove(on: ipv6.device, keeping: wanted6) }
        return removed
    }

    private func route(_ lease: SubnetLease) -> RouteSpec {
        RouteSpec(destination: lease.subnet.description, gateway: lease.vtepAddress.description, device: device,
                  onLink: true)
    }

    private func directRoute(_ lease: SubnetLease) -> RouteSpec {
        RouteSpec(destination: lease.subnet.description, gateway: lease.publicIP.description, device: underlay.interface)
    }
}

import StraitModel
import StraitNetlink

/// The VXLAN backend: one device `strait.<VNI>` without learning, addressed `<subnet>.0/32`, and per
/// remote node a permanent neighbour entry, an FDB entry to its public IP, then the on-link route
/// to its subnet via its `.0` (last, so the kernel never has to ARP for the gateway).
///
/// Equivalent, per remote node 10.244.2.0/24 at 192.168.100.2 with VTEP MAC M:
///
///     ip neigh replace 10.244.2.0 lladdr M dev strait.1 nud permanent
///     bridge fdb replace M dev strait.1 dst 192.168.100.2 self permanent
///     ip route replace 10.244.2.0/24 via 10.244.2.0 dev strait.1 onlink
public struct VXLANBackend: OverlayBackend {
    /// VXLAN over IPv4 costs 50 bytes: outer IPv4 (20), UDP (8), VXLAN (8), inner Ethernet (14).
    public static let encapsulationOverhead = 50

    public let device: String
    public let vni: UInt32
    public let port: UInt16
    public let vtepMAC: String
    public let underlay: Underlay
    private let netlink: NetlinkSocket

    public init(vni: UInt32, port: UInt16, vtepMAC: String, underlay: Underlay, netlink: NetlinkSocket) {
        device = Self.deviceName(vni: vni)
        self.vni = vni
        self.port = port
        self.vtepMAC = vtepMAC
        self.underlay = underlay
        self.netlink = netlink
    }

    public static func deviceName(vni: UInt32) -> String { "strait.\(vni)" }

    public var type: BackendType { .vxlan }
    public var podMTU: Int { underlay.mtu - Self.encapsulationOverhead }

    public func configure(subnet: IPv4CIDR) throws(OverlayError) {
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
                                     device: underlay.interface, learning: false)
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
        guard let link = try? netlink.link(named: device) else { return false }
        return link.kind == "vxlan" && link.up
    }

    public func refusal(for lease: SubnetLease) -> String? {
        if lease.backendType != BackendType.vxlan.rawValue {
            return "lease \(lease.subnet) of \(lease.publicIP) uses backend \(lease.backendType), this node runs vxlan"
        }
        if lease.vtepMAC == nil { return "lease \(lease.subnet) of \(lease.publicIP) has no VtepMAC" }
        if let remoteVNI = lease.vni, remoteVNI != vni {
            return "lease \(lease.subnet) of \(lease.publicIP) uses VNI \(remoteVNI), this node \(vni)"
        }
        return nil
    }

    public func add(_ lease: SubnetLease) throws(OverlayError) {
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
        try? netlink.deleteRoute(route(lease))
        guard let mac = lease.vtepMAC else { return }
        try? netlink.deleteFDB(FDBEntry(mac: mac, device: device, destination: lease.publicIP.description))
        try? netlink.deleteNeighbour(NeighbourSpec(address: lease.vtepAddress.description, mac: mac, device: device))
    }

    public func removeStaleRoutes(keeping table: RouteTable, network: IPv4CIDR) -> [String] {
        guard let index = try? netlink.link(named: device).index, let routes = try? netlink.routes() else { return [] }
        var removed: [String] = []
        for route in routes where route.linkIndex == index && route.gateway != nil {
            guard let destination = try? IPv4CIDR(parsing: route.destination), network.contains(destination),
                  table[destination] == nil else { continue }
            if (try? netlink.deleteRoute(RouteSpec(destination: route.destination, device: device))) != nil {
                removed.append(route.destination)
            }
        }
        return removed
    }

    private func route(_ lease: SubnetLease) -> RouteSpec {
        RouteSpec(destination: lease.subnet.description, gateway: lease.vtepAddress.description, device: device,
                  onLink: true)
    }
}

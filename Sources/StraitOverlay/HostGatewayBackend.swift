import StraitModel
import StraitNetlink

/// The host-gw backend: a plain route to each remote subnet via the remote node's public IP on the
/// underlay interface. No encapsulation, so every node must be on this node's L2 segment; a lease
/// from a node that is not is refused with an error naming both.
///
/// Equivalent, per remote node: `ip route replace 10.244.2.0/24 via 192.168.100.2 dev eth0`.
public struct HostGatewayBackend: OverlayBackend {
    public let underlay: Underlay
    private let netlink: NetlinkSocket

    /// Refuses a public IP that is not on the interface (a NAT'd address cannot be a next hop).
    public init(underlay: Underlay, netlink: NetlinkSocket) throws(OverlayError) {
        guard underlay.prefixes.contains(where: { $0.address == underlay.publicIP }) else {
            throw OverlayError(.underlay, "host-gw needs the public IP \(underlay.publicIP) on \(underlay.interface) "
                + "(peers route to it directly); it is not there: fix --public-ip or use --backend vxlan")
        }
        self.underlay = underlay
        self.netlink = netlink
    }

    public var type: BackendType { .hostGateway }
    public var podMTU: Int { underlay.mtu }

    public func configure(_ own: SubnetLease) throws(OverlayError) {}

    public func isIntact() -> Bool { true }

    public func refusal(for lease: SubnetLease) -> String? {
        if lease.backendType != BackendType.hostGateway.rawValue {
            return "lease \(lease.subnet) of \(lease.publicIP) uses backend \(lease.backendType), this node runs host-gw"
        }
        guard underlay.isOnLink(lease.publicIP) else {
            let segment = underlay.prefixes.map { $0.masked.description }.joined(separator: ", ")
            return "host-gw cannot reach \(lease.subnet): its node \(lease.publicIP) is not on this node's L2 segment "
                + "(\(segment) on \(underlay.interface)); host-gw needs all nodes on one L2 segment, use --backend vxlan"
        }
        return nil
    }

    public func add(_ lease: SubnetLease) throws(OverlayError) {
        do { try netlink.replaceRoute(route(lease)) } catch {
            throw OverlayError(.kernel, "cannot route \(lease.subnet) via \(lease.publicIP): \(error)")
        }
    }

    public func remove(_ lease: SubnetLease) {
        try? netlink.deleteRoute(route(lease))
    }

    public func removeStaleEntries(keeping table: RouteTable, network: IPv4CIDR) -> [String] {
        StaleRoutes(netlink: netlink).remove(on: [underlay.interface], inside: network, keeping: table)
            .map { "route \($0)" }
    }

    private func route(_ lease: SubnetLease) -> RouteSpec {
        RouteSpec(destination: lease.subnet.description, gateway: lease.publicIP.description, device: underlay.interface)
    }
}

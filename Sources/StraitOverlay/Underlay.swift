import StraitModel
import StraitNetlink

/// The interface that carries traffic between nodes, with this node's address on it.
public struct Underlay: Sendable, Hashable {
    public var interface: String
    public var publicIP: IPv4Address
    public var mtu: Int
    /// The IPv4 prefixes configured on the interface: the L2 segment host-gw needs peers on.
    public var prefixes: [IPv4CIDR]

    /// Finds the interface (`--iface`, else the one holding the default route) and the public IP
    /// (`--public-ip`, else the interface's first IPv4 address).
    public static func discover(interface: String?, publicIP: String?, netlink: NetlinkSocket) throws(OverlayError) -> Underlay {
        do {
            let links = try netlink.links()
            let name: String
            if let interface {
                name = interface
            } else {
                let defaults = try netlink.routes().filter { $0.destination == "0.0.0.0/0" }
                guard let index = defaults.compactMap(\.linkIndex).first,
                      let link = links.first(where: { $0.index == index })
                else {
                    throw OverlayError(.underlay, "no IPv4 default route to take the underlay interface from; pass --iface")
                }
                name = link.name
            }
            guard let link = links.first(where: { $0.name == name }) else {
                throw OverlayError(.underlay, "underlay interface \(name) does not exist")
            }
            let prefixes = try netlink.addresses(of: name).compactMap { try? IPv4CIDR(parsing: $0.address) }
                .filter { !$0.address.isLinkLocal }
            let address: IPv4Address
            if let publicIP {
                do { address = try IPv4Address(parsing: publicIP) } catch {
                    throw OverlayError(.underlay, "--public-ip: \(error)")
                }
            } else {
                guard let first = prefixes.first else {
                    throw OverlayError(.underlay, "underlay interface \(name) has no IPv4 address; pass --public-ip")
                }
                address = first.address
            }
            return Underlay(interface: name, publicIP: address, mtu: Int(link.mtu), prefixes: prefixes)
        } catch let error as OverlayError {
            throw error
        } catch {
            throw OverlayError(.underlay, "cannot inspect the underlay: \(error)")
        }
    }

    /// Whether `address` is directly reachable on the interface (one L2 segment).
    public func isOnLink(_ address: IPv4Address) -> Bool {
        prefixes.contains { $0.masked.contains(address) }
    }
}

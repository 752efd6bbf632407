import StraitModel
import StraitNetlink

/// The interface that carries traffic between nodes, with this node's address on it.
public struct Underlay: Sendable, Hashable {
    public var interface: String
    public var publicIP: IPv4Address
    public var mtu: Int
    /// The IPv4 prefixes configured on the interface: the L2 segment host-gw needs peers on.
    public var prefixes: [IPv4CIDR]
    /// The interface's global IPv6 addresses, the first of which is the dual-stack public address.
    public var ipv6Addresses: [IPv6Address] = []

    public init(interface: String, publicIP: IPv4Address, mtu: Int, prefixes: [IPv4CIDR],
                ipv6Addresses: [IPv6Address] = []) {
        self.interface = interface
        self.publicIP = publicIP
        self.mtu = mtu
        self.prefixes = prefixes
        self.ipv6Addresses = ipv6Addresses
    }

    /// How flanneld picks the interface, in its order: `--iface` (names or addresses, the first that
    /// exists), else `--iface-regex` (names, then addresses), else `--iface-can-reach` (the interface
    /// the route to that address leaves by), else the one holding the IPv4 default route. The public
    /// IP is `--public-ip`, else the address `--iface` named, else the interface's first IPv4 address.
    public static func discover(_ options: OverlayOptions, netlink: NetlinkSocket) throws(OverlayError) -> Underlay {
        do {
            let links = try netlink.links()
            var addresses: [String: [AddressInfo]] = [:]
            for link in links { addresses[link.name] = (try? netlink.addresses(of: link.name)) ?? [] }
            func holder(of address: String) -> String? {
                links.first { link in (addresses[link.name] ?? []).contains { bare($0.address) == address } }?.name
            }
            var name: String?
            var namedAddress: String?
            if !options.interfaces.isEmpty {
                for spec in options.interfaces {
                    if (try? IPAddress(parsing: spec)) != nil {
                        if let found = holder(of: spec) { name = found; namedAddress = spec; break }
                    } else if links.contains(where: { $0.name == spec }) {
                        name = spec
                        break
                    }
                }
                guard name != nil else {
                    throw OverlayError(.underlay, "none of --iface \(options.interfaces.joined(separator: ", ")) "
                        + "is an interface or an address of one")
                }
            } else if !options.interfaceRegexes.isEmpty {
                search: for pattern in options.interfaceRegexes {
                    let regex = try Regex(pattern)
                    if let link = links.first(where: { $0.name.firstMatch(of: regex) != nil }) {
                        name = link.name
                        break search
                    }
                    for link in links {
                        let own = addresses[link.name] ?? []
                        if let match = own.first(where: { bare($0.address).firstMatch(of: regex) != nil }) {
                            name = link.name
                            namedAddress = bare(match.address)
                            break search
                        }
                    }
                }
                guard name != nil else {
                    throw OverlayError(.underlay, "no interface name or address matches --iface-regex "
                        + options.interfaceRegexes.joined(separator: ", "))
                }
            } else if let target = options.interfaceCanReach {
                name = try routeInterface(to: try IPv4Address(parsing: target), netlink: netlink, links: links,
                                          what: "--iface-can-reach \(target)")
            } else {
                let defaults = try netlink.routes().filter { $0.destination == "0.0.0.0/0" }
                guard let index = defaults.compactMap(\.linkIndex).first,
                      let link = links.first(where: { $0.index == index })
                else {
                    throw OverlayError(.underlay, "no IPv4 default route to take the underlay interface from; pass --iface")
                }
                name = link.name
            }
            guard let name, let link = links.first(where: { $0.name == name }) else {
                throw OverlayError(.underlay, "underlay interface \(name ?? "?") does not exist")
            }
            let own = addresses[name] ?? []
            let prefixes = own.compactMap { try? IPv4CIDR(parsing: $0.address) }.filter { !$0.address.isLinkLocal }
            let v6 = own.compactMap { try? IPv6CIDR(parsing: $0.address).address }
                .filter { !$0.description.hasPrefix("fe80") }
            let address: IPv4Address
            if let publicIP = options.publicIP {
                do { address = try IPv4Address(parsing: publicIP) } catch {
                    throw OverlayError(.underlay, "--public-ip: \(error)")
                }
            } else if let namedAddress, let named = try? IPv4Address(parsing: namedAddress) {
                address = named
            } else {
                guard let first = prefixes.first else {
                    throw OverlayError(.underlay, "underlay interface \(name) has no IPv4 address; pass --public-ip")
                }
                address = first.address
            }
            return Underlay(interface: name, publicIP: address, mtu: Int(link.mtu), prefixes: prefixes,
                            ipv6Addresses: v6)
        } catch let error as OverlayError {
            throw error
        } catch {
            throw OverlayError(.underlay, "cannot inspect the underlay: \(error)")
        }
    }

    /// The interface of the most specific main-table route to `target` (what `ip route get` answers).
    static func routeInterface(to target: IPv4Address, netlink: NetlinkSocket, links: [LinkInfo],
                               what: String) throws -> String {
        let routes = try netlink.routes().filter { $0.linkIndex != nil && !$0.isIPv6 }
        let candidates = routes.compactMap { route -> (length: Int, index: Int32)? in
            guard let prefix = try? IPv4CIDR(parsing: route.destination), prefix.masked.contains(target) else {
                return nil
            }
            return (prefix.prefixLength, route.linkIndex!)
        }
        guard let best = candidates.max(by: { $0.length < $1.length }),
              let link = links.first(where: { $0.index == best.index }) else {
            throw OverlayError(.underlay, "\(what): no route reaches it")
        }
        return link.name
    }

    /// Whether `address` is directly reachable on the interface (one L2 segment).
    public func isOnLink(_ address: IPv4Address) -> Bool {
        prefixes.contains { $0.masked.contains(address) }
    }

    /// The MTU the VXLAN device is sized from: the backend's `MTU` when set, else the interface's.
    public func mtu(override: Int?) -> Int { override ?? mtu }
}

private func bare(_ address: String) -> String { String(address.prefix { $0 != "/" }) }

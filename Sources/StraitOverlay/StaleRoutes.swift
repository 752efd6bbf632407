import StraitModel
import StraitNetlink

/// The one sweep every backend runs after a full listing: routes with a gateway into the cluster
/// network, on the backend's devices, whose subnet the route table no longer holds — left by leases
/// that vanished while the agent was down.
///
/// Equivalent: `ip route show dev strait.1` and `ip route del` for each such subnet.
struct StaleRoutes {
    let netlink: NetlinkSocket

    /// Removes them; returns the destinations removed.
    func remove(on devices: [String], inside network: IPv4CIDR, keeping table: RouteTable) -> [String] {
        guard let routes = try? netlink.routes() else { return [] }
        var removed: [String] = []
        for device in devices {
            guard let index = try? netlink.link(named: device).index else { continue }
            for route in routes where route.linkIndex == index && route.gateway != nil {
                guard let destination = try? IPv4CIDR(parsing: route.destination), network.contains(destination),
                      table[destination] == nil else { continue }
                let spec = RouteSpec(destination: route.destination, gateway: route.gateway, device: device)
                if (try? netlink.deleteRoute(spec)) != nil { removed.append(route.destination) }
            }
        }
        return removed
    }

    /// The same for the IPv6 device: every gatewayed route on it whose subnet no lease holds.
    func removeIPv6(on device: String, keeping table: RouteTable) -> [String] {
        guard let routes = try? netlink.routes(), let index = try? netlink.link(named: device).index else { return [] }
        let kept = Set(table.leases.values.compactMap { $0.ipv6Subnet?.description })
        var removed: [String] = []
        for route in routes where route.linkIndex == index && route.gateway != nil && route.isIPv6 {
            guard !kept.contains(route.destination) else { continue }
            let spec = RouteSpec(destination: route.destination, gateway: route.gateway, device: device)
            if (try? netlink.deleteRoute(spec)) != nil { removed.append(route.destination) }
        }
        return removed
    }
}

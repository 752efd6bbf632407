#if canImport(Glibc)
import Glibc
#endif
import CNetlink

/// How far a route's destination is: `RT_SCOPE_*`.
public enum RouteScope: UInt8, Sendable, Hashable {
    case universe = 0
    case site = 200
    case link = 253
    case host = 254
}

/// A route to add, replace or delete.
public struct RouteSpec: Sendable, Hashable {
    /// "10.244.1.0/24", "fd00:1::/64", "10.0.0.1" (a host route) or "default".
    public var destination: String
    /// The next hop ("via"); `nil` for a directly connected destination.
    public var gateway: String?
    /// The output device ("dev").
    public var device: String?
    /// Whether the gateway is reachable on `device` even without a matching subnet ("onlink"),
    /// as flannel routes each node's subnet via its VTEP address.
    public var onLink: Bool
    /// `nil` lets the scope follow from the route, as `ip route` does: link without a gateway,
    /// universe with one.
    public var scope: RouteScope?
    /// The routing table; `nil` is the main table (254).
    public var table: UInt32?

    public init(destination: String, gateway: String? = nil, device: String? = nil, onLink: Bool = false,
                scope: RouteScope? = nil, table: UInt32? = nil) {
        self.destination = destination
        self.gateway = gateway
        self.device = device
        self.onLink = onLink
        self.scope = scope
        self.table = table
    }

    /// The route as `ip route` would be told it: "10.244.1.0/24 via 10.244.1.0 dev vx onlink table 100".
    public var command: String {
        var words = [destination]
        if let gateway { words += ["via", gateway] }
        if let device { words += ["dev", device] }
        if onLink { words.append("onlink") }
        if let scope { words += ["scope", "\(scope.rawValue)"] }
        if let table { words += ["table", "\(table)"] }
        return words.joined(separator: " ")
    }

    /// IPv6 when the destination or the gateway is written as IPv6.
    var family: Int32 {
        if destination.contains(":") || (gateway?.contains(":") ?? false) { return AF_INET6 }
        return AF_INET
    }
}

/// Adding, replacing and deleting routes.
extension NetlinkSocket {
    /// Adds a route; fails with EEXIST when the same route is already there.
    /// Equivalent: `ip route add DESTINATION [via GW] [dev DEV] [onlink] [scope S] [table T]`.
    public func addRoute(_ route: RouteSpec) throws {
        try send(route, "add route") { rtnl_route_add($0, $1, NLM_F_EXCL) }
    }

    /// Adds a route, or replaces the one with the same destination and table.
    /// Equivalent: `ip route replace DESTINATION …`.
    public func replaceRoute(_ route: RouteSpec) throws {
        try send(route, "replace route") { rtnl_route_add($0, $1, NLM_F_REPLACE) }
    }

    /// Deletes the route; its gateway and device, when given, must match.
    /// Equivalent: `ip route del DESTINATION …`.
    public func deleteRoute(_ route: RouteSpec) throws {
        try send(route, "delete route", routeProtocol: 0) { rtnl_route_delete($0, $1, 0) }
    }

    /// Builds the route and sends it with `request`. `routeProtocol` is "boot" for additions, as
    /// `ip route add` marks them, and 0 for deletions, which then match a route of any protocol.
    private func send(_ spec: RouteSpec, _ operation: String, routeProtocol: UInt8 = UInt8(RTPROT_BOOT),
                      _ request: (OpaquePointer, OpaquePointer) -> Int32) throws {
        let route = try allocated(rtnl_route_alloc(), spec.destination)
        defer { rtnl_route_put(route) }
        let family = spec.family
        try netlink(operation, spec.command, rtnl_route_set_family(route, UInt8(family)))
        let destination = try NetlinkAddress(ip: spec.destination, family: family, for: operation)
        try netlink(operation, spec.command, rtnl_route_set_dst(route, destination.pointer))
        if let table = spec.table { rtnl_route_set_table(route, table) }
        if let scope = spec.scope { rtnl_route_set_scope(route, scope.rawValue) }
        rtnl_route_set_protocol(route, routeProtocol)
        if spec.gateway != nil || spec.device != nil {
            let hop = try allocated(rtnl_route_nh_alloc(), spec.command)
            if let device = spec.device { rtnl_route_nh_set_ifindex(hop, try linkIndex(device)) }
            if let gateway = spec.gateway {
                rtnl_route_nh_set_gateway(hop, try NetlinkAddress(ip: gateway, family: family, for: operation).pointer)
            }
            if spec.onLink { rtnl_route_nh_set_flags(hop, UInt32(RTNH_F_ONLINK)) }
            rtnl_route_add_nexthop(route, hop)  // the route owns the hop from here
        }
        try call(operation, spec.command) { request($0, route) }
    }
}

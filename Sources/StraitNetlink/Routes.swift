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
    /// A route that drops what it matches (`ip route add blackhole …`); no gateway or device.
    public var blackhole: Bool
    /// The route's priority ("metric"); `nil` is 0, the kernel's own routes' priority.
    public var metric: UInt32?

    public init(destination: String, gateway: String? = nil, device: String? = nil, onLink: Bool = false,
                scope: RouteScope? = nil, table: UInt32? = nil, blackhole: Bool = false, metric: UInt32? = nil) {
        self.metric = metric
        self.destination = destination
        self.gateway = gateway
        self.device = device
        self.onLink = onLink
        self.scope = scope
        self.table = table
        self.blackhole = blackhole
    }

    /// The route as `ip route` would be told it: "10.244.1.0/24 via 10.244.1.0 dev vx onlink table 100".
    public var command: String {
        var words = blackhole ? ["blackhole", destination] : [destination]
        if let gateway { words += ["via", gateway] }
        if let device { words += ["dev", device] }
        if onLink { words.append("onlink") }
        if let scope { words += ["scope", "\(scope.rawValue)"] }
        if let table { words += ["table", "\(table)"] }
        if let metric { words += ["metric", "\(metric)"] }
        return words.joined(separator: " ")
    }

    /// IPv6 when the destination or the gateway is written as IPv6.
    var family: Int32 {
        if destination.contains(":") || (gateway?.contains(":") ?? false) { return AF_INET6 }
        return AF_INET
    }
}

/// A route as the kernel reports it.
public struct RouteInfo: Sendable, Hashable {
    /// Always a prefix: "10.244.1.0/24", "10.0.0.1/32", "0.0.0.0/0" for the IPv4 default, "::/0" for IPv6.
    public let destination: String
    /// The first next hop's gateway, if it has one.
    public let gateway: String?
    /// The first next hop's device index.
    public let linkIndex: Int32?
    public let onLink: Bool
    /// `RT_SCOPE_*`: 0 universe, 253 link, 254 host.
    public let scope: UInt8
    public let table: UInt32
    /// `RTPROT_*`: 2 kernel, 3 boot, 4 static.
    public let routeProtocol: UInt8

    public init(destination: String, gateway: String?, linkIndex: Int32?, onLink: Bool, scope: UInt8,
                table: UInt32, routeProtocol: UInt8) {
        self.destination = destination
        self.gateway = gateway
        self.linkIndex = linkIndex
        self.onLink = onLink
        self.scope = scope
        self.table = table
        self.routeProtocol = routeProtocol
    }

    /// Whether this is an IPv6 route.
    public var isIPv6: Bool { destination.contains(":") }
}

/// Listing, adding, replacing and deleting routes.
extension NetlinkSocket {
    /// The unicast routes of `table` (the main table unless told; `nil` for every table), IPv4 and IPv6.
    /// Equivalent: `ip route show table T; ip -6 route show table T`.
    public func routes(table: UInt32? = UInt32(RT_TABLE_MAIN.rawValue)) throws -> [RouteInfo] {
        var cache: OpaquePointer?
        try call("list routes", table.map { "table \($0)" } ?? "all tables") {
            rtnl_route_alloc_cache($0, AF_UNSPEC, 0, &cache)
        }
        guard let cache else { return [] }
        defer { nl_cache_free(cache) }
        var result: [RouteInfo] = []
        var object = nl_cache_get_first(cache)
        while let route = object {
            object = nl_cache_get_next(route)
            let routeTable = rtnl_route_get_table(route)
            if let table, routeTable != table { continue }
            guard rtnl_route_get_type(route) == UInt8(RTN_UNICAST) else { continue }
            let family = Int32(rtnl_route_get_family(route))
            let destination = ipText(rtnl_route_get_dst(route), alwaysWithPrefix: true)
                ?? (family == AF_INET6 ? "::/0" : "0.0.0.0/0")
            let hop = rtnl_route_get_nnexthops(route) > 0 ? rtnl_route_nexthop_n(route, 0) : nil
            let index = hop.map { rtnl_route_nh_get_ifindex($0) } ?? 0
            result.append(RouteInfo(
                destination: destination,
                gateway: hop.flatMap { ipText(rtnl_route_nh_get_gateway($0)) },
                linkIndex: index > 0 ? index : nil,
                onLink: hop.map { rtnl_route_nh_get_flags($0) & UInt32(RTNH_F_ONLINK) != 0 } ?? false,
                scope: rtnl_route_get_scope(route),
                table: routeTable,
                routeProtocol: rtnl_route_get_protocol(route)))
        }
        return result
    }

    /// Adds a route; fails with EEXIST when the same route is already there.
    /// Equivalent: `ip route add DESTINATION [via GW] [dev DEV] [onlink] [scope S] [table T]`.
    public func addRoute(_ route: RouteSpec) throws {
        try send(route, "add route") { rtnl_route_add($0, $1, NLM_F_CREATE | NLM_F_EXCL) }
    }

    /// `addRoute(_:)` out of the device with index `deviceIndex`, known from an earlier lookup, in
    /// place of `route.device`: one request instead of two.
    public func addRoute(_ route: RouteSpec, deviceIndex: Int32) throws {
        try send(route, "add route", deviceIndex: deviceIndex) { rtnl_route_add($0, $1, NLM_F_CREATE | NLM_F_EXCL) }
    }

    /// Adds a route, or replaces the one with the same destination and table.
    /// Equivalent: `ip route replace DESTINATION …`.
    public func replaceRoute(_ route: RouteSpec) throws {
        try send(route, "replace route") { rtnl_route_add($0, $1, NLM_F_CREATE | NLM_F_REPLACE) }
    }

    /// Deletes the route; its gateway and device, when given, must match.
    /// Equivalent: `ip route del DESTINATION …`.
    public func deleteRoute(_ route: RouteSpec) throws {
        try send(route, "delete route", routeProtocol: 0) { socket, request in
            guard route.scope == nil else { return rtnl_route_delete(socket, request, 0) }
            // libnl replaces an unset scope by a guess (link without a gateway), which would miss a
            // universe route; `ip route del` sends RT_SCOPE_NOWHERE, "any scope", so patch that in.
            var message: OpaquePointer?
            let built = rtnl_route_build_del_request(request, 0, &message)
            guard built >= 0, let message else { return built }
            nlmsg_data(nlmsg_hdr(message)).assumingMemoryBound(to: rtmsg.self).pointee.rtm_scope =
                UInt8(RT_SCOPE_NOWHERE.rawValue)
            return nl_send_sync(socket, message)  // frees the message
        }
    }

    /// Builds the route and sends it with `request`. `routeProtocol` is "boot" for additions, as
    /// `ip route add` marks them, and 0 for deletions, which then match a route of any protocol.
    private func send(_ spec: RouteSpec, _ operation: String, routeProtocol: UInt8 = UInt8(RTPROT_BOOT),
                      deviceIndex: Int32? = nil, _ request: (OpaquePointer, OpaquePointer) -> Int32) throws {
        let route = try allocated(rtnl_route_alloc(), spec.destination)
        defer { rtnl_route_put(route) }
        let family = spec.family
        try netlink(operation, spec.command, rtnl_route_set_family(route, UInt8(family)))
        let destination = try NetlinkAddress(ip: spec.destination, family: family, for: operation)
        try netlink(operation, spec.command, destination.withPointer { rtnl_route_set_dst(route, $0) })
        if let table = spec.table { rtnl_route_set_table(route, table) }
        if let scope = spec.scope { rtnl_route_set_scope(route, scope.rawValue) }
        if spec.blackhole { rtnl_route_set_type(route, UInt8(RTN_BLACKHOLE)) }
        if let metric = spec.metric { rtnl_route_set_priority(route, metric) }
        rtnl_route_set_protocol(route, routeProtocol)
        if spec.gateway != nil || spec.device != nil || deviceIndex != nil {
            // Resolve everything that can fail before allocating the hop, so a failure leaks nothing.
            let index = try deviceIndex ?? spec.device.map { name throws(NetlinkError) in try linkIndex(name) }
            let gateway = try spec.gateway.map { text throws(NetlinkError) in
                try NetlinkAddress(ip: text, family: family, for: operation)
            }
            let hop = try allocated(rtnl_route_nh_alloc(), spec.command)
            if let index { rtnl_route_nh_set_ifindex(hop, index) }
            gateway?.withPointer { rtnl_route_nh_set_gateway(hop, $0) }
            if spec.onLink { rtnl_route_nh_set_flags(hop, UInt32(RTNH_F_ONLINK)) }
            rtnl_route_add_nexthop(route, hop)  // the route owns the hop from here
        }
        try call(operation, spec.command) { request($0, route) }
    }
}

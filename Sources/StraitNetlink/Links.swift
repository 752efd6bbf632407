#if canImport(Glibc)
import Glibc
#endif
import CNetlink

/// Creating, inspecting, changing and deleting network devices.
extension NetlinkSocket {
    /// Creates a device in one request.
    /// Equivalent: `ip link add NAME [mtu M] [address MAC] [up] type KIND …`.
    public func addLink(_ spec: LinkSpec) throws {
        let operation = "add link"
        // Opened before anything is allocated, so a missing namespace leaks nothing.
        var peerNamespace: Int32?
        if case .veth(_, let namespace?) = spec.kind { peerNamespace = try NetworkNamespace.open(namespace) }
        defer { if let peerNamespace { close(peerNamespace) } }

        let link: OpaquePointer = switch spec.kind {
        case .veth: try allocated(rtnl_link_veth_alloc(), spec.name)
        case .vxlan: try allocated(rtnl_link_vxlan_alloc(), spec.name)
        case .bridge, .dummy: try allocated(rtnl_link_alloc(), spec.name)
        }
        defer { rtnl_link_put(link) }
        rtnl_link_set_name(link, spec.name)
        switch spec.kind {
        case .veth(let peerName, _):
            let peer = rtnl_link_veth_get_peer(link)  // a new reference
            defer { rtnl_link_put(peer) }
            rtnl_link_set_name(peer, peerName)
            if let peerNamespace { rtnl_link_set_ns_fd(peer, peerNamespace) }
            if let mtu = spec.peerMTU { rtnl_link_set_mtu(peer, mtu) }
            if let mac = spec.peerMAC {
                try NetlinkAddress(mac: mac, for: operation).withPointer { rtnl_link_set_addr(peer, $0) }
            }
        case .vxlan(let vxlan):
            try configure(vxlan: link, vxlan, name: spec.name)
        case .bridge:
            try netlink(operation, spec.name, rtnl_link_set_type(link, "bridge"))
        case .dummy:
            try netlink(operation, spec.name, rtnl_link_set_type(link, "dummy"))
        }
        if let mtu = spec.mtu { rtnl_link_set_mtu(link, mtu) }
        if let mac = spec.mac {
            try NetlinkAddress(mac: mac, for: operation).withPointer { rtnl_link_set_addr(link, $0) }
        }
        if spec.up { rtnl_link_set_flags(link, UInt32(IFF_UP)) }
        try call(operation, spec.name) { rtnl_link_add($0, link, NLM_F_CREATE | NLM_F_EXCL) }
    }

    private func configure(vxlan link: OpaquePointer, _ vxlan: VXLANSpec, name: String) throws(NetlinkError) {
        let operation = "add link"
        try netlink(operation, name, rtnl_link_vxlan_set_id(link, vxlan.vni))
        try netlink(operation, name, rtnl_link_vxlan_set_port(link, UInt32(vxlan.port)))
        try netlink(operation, name, rtnl_link_vxlan_set_learning(link, vxlan.learning ? 1 : 0))
        if vxlan.gbp {
            try netlink(operation, name, rtnl_link_vxlan_set_flags(link, UInt32(RTNL_LINK_VXLAN_F_GBP), 1))
        }
        if let local = vxlan.local {
            let address = try NetlinkAddress(ip: local, for: operation)
            try netlink(operation, name, address.withPointer { rtnl_link_vxlan_set_local(link, $0) })
        }
        if let device = vxlan.device {
            try netlink(operation, name, rtnl_link_vxlan_set_link(link, UInt32(try linkIndex(device))))
        }
    }

    /// Deletes the device `name`; deleting one end of a veth pair deletes both.
    /// Equivalent: `ip link del NAME`.
    public func deleteLink(named name: String) throws {
        let link = try allocated(rtnl_link_alloc(), name)
        defer { rtnl_link_put(link) }
        rtnl_link_set_name(link, name)
        try call("delete link", name) { rtnl_link_delete($0, link) }
    }

    /// The device `name`, asked of the kernel directly (no cache).
    /// Equivalent: `ip link show NAME`.
    public func link(named name: String) throws -> LinkInfo {
        var found: OpaquePointer?
        try call("get link", name) { rtnl_link_get_kernel($0, 0, name, &found) }
        let link = try allocated(found, name)
        defer { rtnl_link_put(link) }
        return LinkInfo(link)
    }

    /// Every device in the socket's namespace, in index order.
    /// Equivalent: `ip link show`.
    public func links() throws -> [LinkInfo] {
        var cache: OpaquePointer?
        try call("list links", "all") { rtnl_link_alloc_cache($0, AF_UNSPEC, &cache) }
        guard let cache else { return [] }
        defer { nl_cache_free(cache) }
        var result: [LinkInfo] = []
        var object = nl_cache_get_first(cache)
        while let link = object {
            result.append(LinkInfo(link))
            object = nl_cache_get_next(link)
        }
        return result.sorted { $0.index < $1.index }
    }

    /// The interface index of the device `name`.
    func linkIndex(_ name: String) throws(NetlinkError) -> Int32 {
        var found: OpaquePointer?
        try call("find link", name) { rtnl_link_get_kernel($0, 0, name, &found) }
        let link = try allocated(found, name)
        defer { rtnl_link_put(link) }
        return rtnl_link_get_ifindex(link)
    }

    /// Sets the device up or down.
    /// Equivalent: `ip link set NAME up|down`.
    public func setLink(_ name: String, up: Bool) throws {
        try change(name, up ? "set link up" : "set link down") { changes in
            if up {
                rtnl_link_set_flags(changes, UInt32(IFF_UP))
            } else {
                rtnl_link_unset_flags(changes, UInt32(IFF_UP))
            }
        }
    }

    /// Equivalent: `ip link set NAME mtu MTU`.
    public func setLink(_ name: String, mtu: UInt32) throws {
        try change(name, "set link mtu \(mtu)") { rtnl_link_set_mtu($0, mtu) }
    }

    /// Sets the MAC address, given as "aa:bb:cc:dd:ee:ff".
    /// Equivalent: `ip link set NAME address MAC`.
    public func setLink(_ name: String, mac: String) throws {
        let address = try NetlinkAddress(mac: mac, for: "set link address")
        try change(name, "set link address \(mac)") { changes in
            address.withPointer { rtnl_link_set_addr(changes, $0) }
        }
    }

    /// Enslaves the device to `master` (a bridge), or frees it when `master` is `nil`.
    /// Equivalent: `ip link set NAME master MASTER` / `ip link set NAME nomaster`.
    public func setLink(_ name: String, master: String?) throws {
        let index = try master.map { masterName throws(NetlinkError) in try linkIndex(masterName) } ?? 0
        try change(name, master.map { "set link master \($0)" } ?? "set link nomaster") {
            rtnl_link_set_master($0, index)
        }
    }

    /// Enslaves the device to the master with index `masterIndex`, known from an earlier lookup,
    /// in one request. Equivalent: `ip link set NAME master MASTER`.
    public func setLink(_ name: String, masterIndex: Int32) throws {
        try change(name, "set link master index \(masterIndex)") { rtnl_link_set_master($0, masterIndex) }
    }

    /// Sends one RTM_SETLINK for the device named `name` carrying what `apply` sets; the kernel
    /// finds the device by name, so no lookup round trip is needed.
    private func change(_ name: String, _ operation: String, _ apply: (OpaquePointer) -> Void) throws {
        let original = try allocated(rtnl_link_alloc(), name)
        defer { rtnl_link_put(original) }
        let changes = try allocated(rtnl_link_alloc(), name)
        defer { rtnl_link_put(changes) }
        rtnl_link_set_name(changes, name)
        apply(changes)
        try call(operation, name) { rtnl_link_change($0, original, changes, 0) }
    }
}

extension LinkInfo {
    /// Reads a libnl `rtnl_link`.
    init(_ link: OpaquePointer) {
        let master = rtnl_link_get_master(link)
        let peer = rtnl_link_get_link(link)
        self.init(name: rtnl_link_get_name(link).map { String(cString: $0) } ?? "",
                  index: rtnl_link_get_ifindex(link),
                  kind: rtnl_link_get_type(link).map { String(cString: $0) },
                  mtu: rtnl_link_get_mtu(link),
                  mac: macText(rtnl_link_get_addr(link)),
                  up: rtnl_link_get_flags(link) & UInt32(IFF_UP) != 0,
                  masterIndex: master == 0 ? nil : master,
                  peerIndex: peer == 0 ? nil : peer)
    }
}

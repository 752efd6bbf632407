#if canImport(Glibc)
import Glibc
#endif
import CNetlink

/// An IP address assigned to a device, as the kernel reports it.
public struct AddressInfo: Sendable, Hashable {
    /// The address with its prefix length: "10.0.0.1/24", "fd00::1/64".
    public let address: String
    /// The index of the device it is on.
    public let linkIndex: Int32
    /// `RT_SCOPE_*`: 0 global, 253 link, 254 host.
    public let scope: UInt8

    public init(address: String, linkIndex: Int32, scope: UInt8) {
        self.address = address
        self.linkIndex = linkIndex
        self.scope = scope
    }

    /// Whether this is an IPv6 address.
    public var isIPv6: Bool { address.contains(":") }
}

/// Assigning and removing IP addresses.
extension NetlinkSocket {
    /// Assigns `address` ("10.0.0.1/24", "fd00::1/64"; no prefix means a host prefix) to `device`.
    /// `skipDAD` marks an IPv6 address usable at once, without duplicate address detection.
    /// Equivalent: `ip addr add ADDRESS dev DEVICE [nodad]`.
    public func addAddress(_ address: String, to device: String, skipDAD: Bool = false) throws {
        try addAddress(address, to: device, index: linkIndex(device), skipDAD: skipDAD)
    }

    /// `addAddress(_:to:skipDAD:)` for the device with index `index`, known from an earlier lookup:
    /// one request instead of two.
    public func addAddress(_ address: String, toLink index: Int32, skipDAD: Bool = false) throws {
        try addAddress(address, to: "index \(index)", index: index, skipDAD: skipDAD)
    }

    /// `addAddress(_:to:skipDAD:)` for a device whose index the caller knows (`link(named:).index`),
    /// so adding thousands of addresses does not look the device up once per address; `device`
    /// names it in errors.
    public func addAddress(_ address: String, to device: String, index: Int32, skipDAD: Bool = false) throws {
        let request = try addressRequest(address, index, "add address")
        defer { rtnl_addr_put(request) }
        if skipDAD { rtnl_addr_set_flags(request, UInt32(IFA_F_NODAD)) }
        try call("add address", "\(address) dev \(device)") { rtnl_addr_add($0, request, NLM_F_CREATE | NLM_F_EXCL) }
    }

    /// Removes `address` from `device`.
    /// Equivalent: `ip addr del ADDRESS dev DEVICE`.
    public func deleteAddress(_ address: String, from device: String) throws {
        try deleteAddress(address, from: device, index: linkIndex(device))
    }

    /// `deleteAddress(_:from:)` for a device whose index the caller knows.
    public func deleteAddress(_ address: String, from device: String, index: Int32) throws {
        let request = try addressRequest(address, index, "delete address")
        defer { rtnl_addr_put(request) }
        try call("delete address", "\(address) dev \(device)") { rtnl_addr_delete($0, request, 0) }
    }

    /// The addresses on `device`, or on every device when `device` is `nil`.
    /// Equivalent: `ip addr show [dev DEVICE]`.
    public func addresses(of device: String? = nil) throws -> [AddressInfo] {
        let index = try device.map { name throws(NetlinkError) in try linkIndex(name) }
        return try addresses(index: index, named: device ?? "all")
    }

    /// The addresses on the device with index `index`, known from an earlier lookup: one dump, no lookup.
    /// Equivalent: `ip addr show dev DEVICE`.
    public func addresses(onLink index: Int32) throws -> [AddressInfo] {
        try addresses(index: index, named: "index \(index)")
    }

    private func addresses(index: Int32?, named device: String) throws -> [AddressInfo] {
        var cache: OpaquePointer?
        try call("list addresses", device) { rtnl_addr_alloc_cache($0, &cache) }
        guard let cache else { return [] }
        defer { nl_cache_free(cache) }
        var result: [AddressInfo] = []
        var object = nl_cache_get_first(cache)
        while let entry = object {
            object = nl_cache_get_next(entry)
            let linkIndex = rtnl_addr_get_ifindex(entry)
            if let index, linkIndex != index { continue }
            guard let text = ipText(rtnl_addr_get_local(entry), alwaysWithPrefix: true) else { continue }
            result.append(AddressInfo(address: text, linkIndex: linkIndex, scope: UInt8(rtnl_addr_get_scope(entry))))
        }
        return result
    }

    private func addressRequest(_ address: String, _ index: Int32, _ operation: String) throws -> OpaquePointer {
        let local = try NetlinkAddress(ip: address, for: operation)
        let request = try allocated(rtnl_addr_alloc(), address)
        rtnl_addr_set_ifindex(request, index)
        do { try netlink(operation, address, local.withPointer { rtnl_addr_set_local(request, $0) }) } catch {
            rtnl_addr_put(request)
            throw error
        }
        return request
    }
}

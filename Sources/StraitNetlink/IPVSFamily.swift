import CNetlink

/// The IPVS generic-netlink family, resolved by name. Its numeric id is what every IPVS request
/// is addressed to; the kernel assigns it when the `ip_vs` module loads.
public struct IPVSFamily: Sendable, Hashable {
    /// The generic-netlink family name the kernel registers IPVS under.
    public static let name = "IPVS"

    public let id: Int32

    /// Resolves the family over `socket`, which must be a `.generic` socket.
    /// Throws a `NetlinkError` with code `.familyNotFound` when the kernel has no IPVS.
    /// Equivalent: `genl ctrl get name IPVS`.
    public static func resolve(on socket: NetlinkSocket) throws -> IPVSFamily {
        IPVSFamily(id: try socket.genericFamily(named: name))
    }

    /// Resolves the family in the calling thread's namespace, or in `namespace`, over a new socket.
    public static func resolve(namespace: String? = nil) throws -> IPVSFamily {
        try resolve(on: NetlinkSocket(.generic, namespace: namespace))
    }
}

extension NetlinkSocket {
    /// The id of the generic-netlink family `name` ("IPVS", "nlctrl", …); the socket must be `.generic`.
    /// Throws a `NetlinkError` with code `.familyNotFound` when the kernel does not provide it.
    /// Equivalent: `genl ctrl get name NAME`.
    public func genericFamily(named name: String) throws -> Int32 {
        let operation = "resolve generic netlink family"
        do {
            return try call(operation, name) { genl_ctrl_resolve($0, name) }
        } catch {
            guard error.code == .objectNotFound else { throw error }
            throw NetlinkError(operation: operation, object: name, code: .familyNotFound, errno: error.errno)
        }
    }
}

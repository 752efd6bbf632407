#if canImport(Glibc)
import Glibc
#endif
import CNetlink

/// A permanent neighbour (ARP / NDP) entry: `address` is reachable at `mac` on `device`.
/// The overlay writes one per remote node: its VTEP address at its VTEP MAC on the vxlan device.
public struct NeighbourSpec: Sendable, Hashable {
    /// The IP address: "10.244.1.0", "fd00::1".
    public var address: String
    /// "aa:bb:cc:dd:ee:ff".
    public var mac: String
    public var device: String

    public init(address: String, mac: String, device: String) {
        self.address = address
        self.mac = mac
        self.device = device
    }

    var command: String { "\(address) lladdr \(mac) dev \(device)" }
}

/// A forwarding-database entry on a vxlan device: frames for `mac` go to the VTEP at `destination`.
/// The all-zeros MAC marks default destinations (flooding); several may coexist with different
/// destinations, which is what `appendFDB` adds.
public struct FDBEntry: Sendable, Hashable {
    public var mac: String
    public var device: String
    /// The remote VTEP address.
    public var destination: String

    public init(mac: String, device: String, destination: String) {
        self.mac = mac
        self.device = device
        self.destination = destination
    }

    /// The MAC that makes an entry a default destination.
    public static let allZerosMAC = "00:00:00:00:00:00"

    var command: String { "\(mac) dev \(device) dst \(destination)" }
}

/// Permanent neighbour entries and vxlan FDB entries.
extension NetlinkSocket {
    /// Adds a permanent neighbour entry, replacing any entry for the same address.
    /// Equivalent: `ip neigh replace ADDRESS lladdr MAC dev DEVICE nud permanent`.
    public func setNeighbour(_ neighbour: NeighbourSpec) throws {
        let operation = "set neighbour"
        let entry = try neighbourRequest(address: neighbour.address, mac: neighbour.mac, device: neighbour.device,
                                         operation, neighbour.command)
        defer { rtnl_neigh_put(entry) }
        try call(operation, neighbour.command) { rtnl_neigh_add($0, entry, NLM_F_CREATE | NLM_F_REPLACE) }
    }

    /// Deletes the neighbour entry for the address on the device.
    /// Equivalent: `ip neigh del ADDRESS dev DEVICE`.
    public func deleteNeighbour(_ neighbour: NeighbourSpec) throws {
        let operation = "delete neighbour"
        let entry = try neighbourRequest(address: neighbour.address, mac: neighbour.mac, device: neighbour.device,
                                         operation, neighbour.command)
        defer { rtnl_neigh_put(entry) }
        try call(operation, neighbour.command) { rtnl_neigh_delete($0, entry, 0) }
    }

    /// Adds an FDB entry beside any others for the same MAC (several all-zeros entries, one per remote VTEP).
    /// Equivalent: `bridge fdb append MAC dev DEVICE dst DESTINATION self permanent`.
    public func appendFDB(_ fdb: FDBEntry) throws {
        let entry = try fdbRequest(fdb, "append fdb")
        defer { rtnl_neigh_put(entry) }
        try call("append fdb", fdb.command) { rtnl_neigh_add($0, entry, NLM_F_CREATE | NLM_F_APPEND) }
    }

    /// Adds an FDB entry, replacing the destination of an existing entry for the same MAC.
    /// Equivalent: `bridge fdb replace MAC dev DEVICE dst DESTINATION self permanent`.
    public func replaceFDB(_ fdb: FDBEntry) throws {
        let entry = try fdbRequest(fdb, "replace fdb")
        defer { rtnl_neigh_put(entry) }
        try call("replace fdb", fdb.command) { rtnl_neigh_add($0, entry, NLM_F_CREATE | NLM_F_REPLACE) }
    }

    /// Deletes the FDB entry for this MAC and destination only; other destinations of the MAC stay.
    /// Equivalent: `bridge fdb del MAC dev DEVICE dst DESTINATION self`.
    public func deleteFDB(_ fdb: FDBEntry) throws {
        let entry = try fdbRequest(fdb, "delete fdb")
        defer { rtnl_neigh_put(entry) }
        try call("delete fdb", fdb.command) { rtnl_neigh_delete($0, entry, 0) }
    }

    /// An FDB entry is a neighbour of family AF_BRIDGE, flagged NTF_SELF so the vxlan device itself
    /// (not a bridge above it) holds it, with the remote VTEP as its IP destination.
    private func fdbRequest(_ fdb: FDBEntry, _ operation: String) throws -> OpaquePointer {
        let entry = try neighbourRequest(address: fdb.destination, mac: fdb.mac, device: fdb.device,
                                         operation, fdb.command)
        // After the destination: libnl refuses a destination whose family differs from the entry's.
        rtnl_neigh_set_family(entry, Int32(AF_BRIDGE))
        rtnl_neigh_set_flags(entry, UInt32(NTF_SELF))
        return entry
    }

    private func neighbourRequest(address: String, mac: String, device: String,
                                  _ operation: String, _ object: String) throws -> OpaquePointer {
        let destination = try NetlinkAddress(ip: address, for: operation)
        let linkLayer = try NetlinkAddress(mac: mac, for: operation)
        let index = try linkIndex(device)
        let entry = try allocated(rtnl_neigh_alloc(), object)
        rtnl_neigh_set_ifindex(entry, index)
        linkLayer.withPointer { rtnl_neigh_set_lladdr(entry, $0) }
        rtnl_neigh_set_state(entry, Int32(NUD_PERMANENT))
        do { try netlink(operation, object, destination.withPointer { rtnl_neigh_set_dst(entry, $0) }) } catch {
            rtnl_neigh_put(entry)
            throw error
        }
        return entry
    }
}

/// A permanent neighbour entry or an FDB entry as the kernel lists it.
public struct NeighbourEntry: Sendable, Hashable {
    public enum Kind: Sendable, Hashable {
        /// An ARP / NDP entry: `address` is at `mac`.
        case neighbour
        /// A forwarding-database entry of a vxlan device: frames for `mac` go to the VTEP at `address`.
        case fdb
    }

    public var kind: Kind
    public var address: String
    public var mac: String
    public var linkIndex: Int32

    public init(kind: Kind, address: String, mac: String, linkIndex: Int32) {
        self.kind = kind
        self.address = address
        self.mac = mac
        self.linkIndex = linkIndex
    }
}

extension NetlinkSocket {
    /// The permanent neighbour and FDB entries on the device with index `index`: one dump of each family
    /// (entries the kernel learned, and FDB entries without a destination, are left out).
    /// Equivalent: `ip neigh show dev DEVICE nud permanent` and `bridge fdb show dev DEVICE`.
    public func permanentNeighbours(onLink index: Int32) throws -> [NeighbourEntry] {
        var cache: OpaquePointer?
        try call("list neighbours", "index \(index)") { rtnl_neigh_alloc_cache_flags($0, &cache, UInt32(NL_CACHE_AF_ITER)) }
        guard let cache else { return [] }
        defer { nl_cache_free(cache) }
        var result: [NeighbourEntry] = []
        var object = nl_cache_get_first(cache)
        while let entry = object {
            object = nl_cache_get_next(entry)
            guard rtnl_neigh_get_ifindex(entry) == index,
                  rtnl_neigh_get_state(entry) & Int32(NUD_PERMANENT) != 0,
                  let address = ipText(rtnl_neigh_get_dst(entry)),
                  let mac = macText(rtnl_neigh_get_lladdr(entry)) else { continue }
            let kind: NeighbourEntry.Kind = rtnl_neigh_get_family(entry) == Int32(AF_BRIDGE) ? .fdb : .neighbour
            result.append(NeighbourEntry(kind: kind, address: address, mac: mac, linkIndex: index))
        }
        return result
    }
}

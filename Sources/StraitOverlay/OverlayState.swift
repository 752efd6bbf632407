import Foundation
import StraitModel

/// What the agent programmed, kept in a file beside the subnet file (`overlay-state.json`):
/// the VTEP MAC, reused across restarts so peers' neighbour and FDB entries stay right, and the
/// remote leases programmed, so a restart can remove the entries of leases that vanished meanwhile
/// (the kernel API here cannot list neighbours and FDB entries by owner).
public struct OverlayState: Sendable, Hashable, Codable {
    public var vtepMAC: String?
    /// The IPv6 device's MAC of a dual-stack node.
    public var ipv6VtepMAC: String?
    public var subnet: String?
    public var peers: [Peer]

    public struct Peer: Sendable, Hashable, Codable {
        public var subnet: String
        public var publicIP: String
        public var vtepMAC: String?
        public var backendType: String?
        public var vni: UInt32?
        public var ipv6Subnet: String?
        public var publicIPv6: String?
        public var ipv6VtepMAC: String?
    }

    public init(vtepMAC: String? = nil, subnet: String? = nil, peers: [Peer] = []) {
        self.vtepMAC = vtepMAC
        self.subnet = subnet
        self.peers = peers
    }

    public static func path(besideSubnetFile subnetFile: String) -> String {
        ((subnetFile as NSString).deletingLastPathComponent as NSString).appendingPathComponent("overlay-state.json")
    }

    public static func load(_ path: String) -> OverlayState? {
        guard let data = FileManager.default.contents(atPath: path) else { return nil }
        return try? JSONDecoder().decode(OverlayState.self, from: data)
    }

    public func save(_ path: String) throws(OverlayError) {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
        let data = (try? encoder.encode(self)) ?? Data()
        try SubnetFileWriter.writeAtomically(String(decoding: data, as: UTF8.self), to: path)
    }

    /// The leases this state says were programmed.
    public var programmed: [SubnetLease] {
        peers.compactMap { peer in
            guard let subnet = try? IPv4CIDR(networkParsing: peer.subnet),
                  let publicIP = try? IPv4Address(parsing: peer.publicIP) else { return nil }
            return SubnetLease(subnet: subnet, publicIP: publicIP, backendType: peer.backendType ?? "",
                               vni: peer.vni, vtepMAC: peer.vtepMAC,
                               ipv6Subnet: peer.ipv6Subnet.flatMap { try? IPv6CIDR(networkParsing: $0) },
                               publicIPv6: peer.publicIPv6.flatMap { try? IPv6Address(parsing: $0) },
                               ipv6VtepMAC: peer.ipv6VtepMAC)
        }
    }

    public static func peers(_ table: RouteTable) -> [Peer] {
        // The table's subnets are distinct networks: their addresses alone order them.
        table.leases.values.sorted { $0.subnet.network.rawValue < $1.subnet.network.rawValue }.map {
            Peer(subnet: $0.subnet.description, publicIP: $0.publicIP.description, vtepMAC: $0.vtepMAC,
                 backendType: $0.backendType, vni: $0.vni, ipv6Subnet: $0.ipv6Subnet?.description,
                 publicIPv6: $0.publicIPv6?.description, ipv6VtepMAC: $0.ipv6VtepMAC)
        }
    }
}

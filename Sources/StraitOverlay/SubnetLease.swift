import Foundation
import StraitModel

/// Where the overlay keeps its shared state in the store (flannel's layout under a Strait prefix).
public enum OverlayKeys {
    public static let prefix = "/strait/network/"
    public static let config = "/strait/network/config"
    public static let subnets = "/strait/network/subnets/"

    /// `/strait/network/subnets/10.244.1.0-24`
    public static func lease(_ subnet: IPv4CIDR) -> String {
        "\(subnets)\(subnet.network)-\(subnet.prefixLength)"
    }

    /// The subnet a lease key names, nil for keys that are not leases.
    public static func subnet(fromKey key: String) -> IPv4CIDR? {
        guard key.hasPrefix(subnets) else { return nil }
        let name = key.dropFirst(subnets.count)
        guard let dash = name.lastIndex(of: "-") else { return nil }
        guard let subnet = try? IPv4CIDR(networkParsing: "\(name[..<dash])/\(name[name.index(after: dash)...])") else {
            return nil
        }
        return subnet
    }
}

/// One node's subnet lease: the subnet from its key and the value flannel writes,
/// `{"PublicIP":"192.168.100.1","BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"…"}}`.
public struct SubnetLease: Sendable, Hashable {
    public var subnet: IPv4CIDR
    public var publicIP: IPv4Address
    public var backendType: String
    public var vni: UInt32?
    public var vtepMAC: String?

    public init(subnet: IPv4CIDR, publicIP: IPv4Address, backendType: String, vni: UInt32? = nil, vtepMAC: String? = nil) {
        self.subnet = subnet
        self.publicIP = publicIP
        self.backendType = backendType
        self.vni = vni
        self.vtepMAC = vtepMAC
    }

    /// The lease a store key and value describe; nil when either is malformed.
    public init?(key: String, value: Data) {
        guard let subnet = OverlayKeys.subnet(fromKey: key),
              let wire = try? JSONDecoder().decode(Wire.self, from: value),
              let publicIP = try? IPv4Address(parsing: wire.PublicIP)
        else { return nil }
        self.init(subnet: subnet, publicIP: publicIP, backendType: wire.BackendType ?? BackendType.vxlan.rawValue,
                  vni: wire.BackendData?.VNI, vtepMAC: wire.BackendData?.VtepMAC?.lowercased())
    }

    public var key: String { OverlayKeys.lease(subnet) }

    public var value: Data {
        let data = vni == nil && vtepMAC == nil ? nil : Wire.Data(VNI: vni, VtepMAC: vtepMAC)
        let wire = Wire(PublicIP: publicIP.description, BackendType: backendType, BackendData: data)
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        return (try? encoder.encode(wire)) ?? Data()
    }

    /// The address the subnet's node gives its VXLAN device: the subnet's `.0`.
    public var vtepAddress: IPv4Address { subnet.network }

    // swiftlint:disable identifier_name
    private struct Wire: Codable {
        struct Data: Codable {
            var VNI: UInt32?
            var VtepMAC: String?
        }
        var PublicIP: String
        var BackendType: String?
        var BackendData: Data?
    }
}

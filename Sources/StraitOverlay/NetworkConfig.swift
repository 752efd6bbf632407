import Foundation
import StraitModel

/// The cluster network every node shares, stored at `/strait/network/config` as flannel's
/// net-conf JSON: `{"Network":"10.244.0.0/16","SubnetLen":24,"Backend":{"Type":"vxlan","VNI":1,"Port":8472}}`.
/// Keys are matched case-insensitively, as Go's `encoding/json` does for flannel.
public struct NetworkConfig: Sendable, Hashable {
    public var network: IPv4CIDR
    public var subnetLength: Int
    /// The lowest and highest subnet a node may lease (flannel's SubnetMin/SubnetMax).
    public var subnetMin: IPv4CIDR
    public var subnetMax: IPv4CIDR
    public var backend: BackendConfig

    public static let defaultVNI: UInt32 = 1
    public static let defaultPort: UInt16 = 8472

    /// Builds and validates a config from flag values.
    public init(network: IPv4CIDR, subnetLength: Int? = nil, backend: BackendConfig = BackendConfig()) throws(OverlayError) {
        let length = subnetLength ?? Self.defaultSubnetLength(for: network)
        try Self.validate(network: network, subnetLength: length)
        self.network = network
        self.subnetLength = length
        let count = network.subnetCount(prefixLength: length)!
        subnetMin = network.subnet(1, prefixLength: length)!
        subnetMax = network.subnet(count - 1, prefixLength: length)!
        self.backend = backend
    }

    /// Parses and validates the stored JSON; every refusal names the key and the value.
    public init(json data: Data) throws(OverlayError) {
        let object: [String: Any]
        do {
            guard let parsed = try JSONSerialization.jsonObject(with: data) as? [String: Any] else {
                throw OverlayError(.invalidConfig, "the network config is not a JSON object: \(Self.excerpt(data))")
            }
            object = parsed
        } catch let error as OverlayError {
            throw error
        } catch {
            throw OverlayError(.invalidConfig, "the network config is not valid JSON (\(Self.excerpt(data))): "
                + "\((error as NSError).userInfo[NSDebugDescriptionErrorKey] ?? error)")
        }
        guard let networkText = Self.value(object, "Network") as? String else {
            throw OverlayError(.invalidConfig, "the network config has no \"Network\" string (e.g. \"10.244.0.0/16\")")
        }
        let network: IPv4CIDR
        do { network = try IPv4CIDR(networkParsing: networkText) } catch {
            throw OverlayError(.invalidConfig, "\"Network\": \(error)")
        }
        var length: Int?
        if let raw = Self.value(object, "SubnetLen") {
            guard let number = raw as? Int, !(raw is Bool) else {
                throw OverlayError(.invalidConfig, "\"SubnetLen\" must be a number, not \(raw)")
            }
            length = number
        }
        var backend = BackendConfig()
        if let raw = Self.value(object, "Backend") {
            guard let section = raw as? [String: Any] else {
                throw OverlayError(.invalidConfig, "\"Backend\" must be an object like {\"Type\":\"vxlan\"}")
            }
            if let type = Self.value(section, "Type") {
                guard let text = type as? String, let kind = BackendType(rawValue: text.lowercased()) else {
                    throw OverlayError(.invalidConfig, "\"Backend.Type\" \(type) is not supported; use vxlan or host-gw")
                }
                backend.type = kind
            }
            if let vni = Self.value(section, "VNI") {
                guard let number = vni as? Int, (1...16_777_215).contains(number) else {
                    throw OverlayError(.invalidConfig, "\"Backend.VNI\" \(vni) is not a VNI (1-16777215)")
                }
                backend.vni = UInt32(number)
            }
            if let port = Self.value(section, "Port") {
                guard let number = port as? Int, (1...65535).contains(number) else {
                    throw OverlayError(.invalidConfig, "\"Backend.Port\" \(port) is not a UDP port")
                }
                backend.port = UInt16(number)
            }
        }
        try self.init(network: network, subnetLength: length, backend: backend)
        for key in ["SubnetMin", "SubnetMax"] {
            guard let raw = Self.value(object, key) else { continue }
            guard let text = raw as? String, let address = try? IPv4Address(parsing: text),
                  let subnet = try? IPv4CIDR(address: address, prefixLength: subnetLength), subnet.isNetwork,
                  network.contains(subnet)
            else {
                throw OverlayError(.invalidConfig, "\"\(key)\" \(raw) is not a /\(subnetLength) subnet start inside \(network)")
            }
            if key == "SubnetMin" { subnetMin = subnet } else { subnetMax = subnet }
        }
        guard subnetMin <= subnetMax else {
            throw OverlayError(.invalidConfig, "\"SubnetMin\" \(subnetMin) is above \"SubnetMax\" \(subnetMax)")
        }
    }

    /// The JSON stored in the store, in flannel's key names.
    public var json: Data {
        var backendObject: [String: Any] = ["Type": backend.type.rawValue]
        if backend.type == .vxlan {
            backendObject["VNI"] = Int(backend.vni)
            backendObject["Port"] = Int(backend.port)
        }
        let object: [String: Any] = ["Network": network.description, "SubnetLen": subnetLength, "Backend": backendObject]
        return (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data()
    }

    /// flannel's rule: /24 subnets, or two bits more than the network when it is smaller than a /22.
    static func defaultSubnetLength(for network: IPv4CIDR) -> Int {
        network.prefixLength > 22 ? network.prefixLength + 2 : 24
    }

    static func validate(network: IPv4CIDR, subnetLength: Int) throws(OverlayError) {
        guard network.prefixLength <= 28 else {
            throw OverlayError(.invalidConfig, "\"Network\" \(network) is too small for node subnets; use a /28 or larger")
        }
        guard subnetLength > network.prefixLength else {
            throw OverlayError(.invalidConfig, "\"SubnetLen\" \(subnetLength) makes node subnets at least as large as "
                + "the network \(network); SubnetLen must be between \(network.prefixLength + 1) and 30")
        }
        guard subnetLength <= 30 else {
            throw OverlayError(.invalidConfig, "\"SubnetLen\" \(subnetLength) leaves no room for pods; use 30 or less")
        }
    }

    private static func value(_ object: [String: Any], _ key: String) -> Any? {
        if let exact = object[key] { return exact is NSNull ? nil : exact }
        let match = object.first { $0.key.lowercased() == key.lowercased() }?.value
        return match is NSNull ? nil : match
    }

    private static func excerpt(_ data: Data) -> String {
        let text = String(decoding: data.prefix(60), as: UTF8.self)
        return "\"\(text)\(data.count > 60 ? "…" : "")\""
    }
}

/// How packets reach other nodes.
public enum BackendType: String, Sendable, Hashable, CaseIterable {
    /// VXLAN encapsulation through `strait.<VNI>`: works across routed underlays.
    case vxlan
    /// Plain routes via each node's public IP: all nodes must share one L2 segment.
    case hostGateway = "host-gw"
}

/// The `Backend` section of the network config.
public struct BackendConfig: Sendable, Hashable {
    public var type: BackendType
    public var vni: UInt32
    public var port: UInt16

    public init(type: BackendType = .vxlan, vni: UInt32 = NetworkConfig.defaultVNI,
                port: UInt16 = NetworkConfig.defaultPort) {
        self.type = type
        self.vni = vni
        self.port = port
    }
}

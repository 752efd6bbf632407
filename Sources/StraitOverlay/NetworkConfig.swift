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
    /// The IPv6 half of a dual-stack network (`EnableIPv6`); nil for IPv4 only.
    public var ipv6: IPv6Settings?

    public static let defaultVNI: UInt32 = 1
    public static let defaultPort: UInt16 = 8472

    /// Builds and validates a config from flag values.
    public init(network: IPv4CIDR, subnetLength: Int? = nil, backend: BackendConfig = BackendConfig(),
                ipv6: IPv6Settings? = nil) throws(OverlayError) {
        let length = subnetLength ?? Self.defaultSubnetLength(for: network)
        try Self.validate(network: network, subnetLength: length)
        self.network = network
        self.subnetLength = length
        let count = network.subnetCount(prefixLength: length)!
        subnetMin = network.subnet(1, prefixLength: length)!
        subnetMax = network.subnet(count - 1, prefixLength: length)!
        self.backend = backend
        self.ipv6 = ipv6
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
            backend = try BackendConfig(section: section)
        }
        try self.init(network: network, subnetLength: length, backend: backend)
        if let enabled = try Self.bool(object, "EnableIPv4"), !enabled {
            throw OverlayError(.invalidConfig, "\"EnableIPv4\" false (an IPv6-only network) is not supported; "
                + "Strait runs IPv4 or dual stack")
        }
        if try Self.bool(object, "EnableIPv6") == true {
            guard let text = Self.value(object, "IPv6Network") as? String else {
                throw OverlayError(.invalidConfig, "\"EnableIPv6\" is true but there is no \"IPv6Network\" string "
                    + "(e.g. \"fd00:10:244::/56\")")
            }
            let v6: IPv6CIDR
            do { v6 = try IPv6CIDR(networkParsing: text) } catch {
                throw OverlayError(.invalidConfig, "\"IPv6Network\": \(error)")
            }
            var v6Length = 64
            if let raw = Self.value(object, "IPv6SubnetLen") {
                guard let number = raw as? Int, !(raw is Bool) else {
                    throw OverlayError(.invalidConfig, "\"IPv6SubnetLen\" must be a number, not \(raw)")
                }
                v6Length = number
            }
            guard v6Length > v6.prefixLength, v6Length <= 126, v6Length - v6.prefixLength <= 62 else {
                throw OverlayError(.invalidConfig, "\"IPv6SubnetLen\" \(v6Length) does not fit \"IPv6Network\" \(v6); "
                    + "use a length between \(v6.prefixLength + 1) and \(min(126, v6.prefixLength + 62))")
            }
            ipv6 = IPv6Settings(network: v6, subnetLength: v6Length)
        }
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
            if let mtu = backend.mtu { backendObject["MTU"] = mtu }
            if backend.gbp { backendObject["GBP"] = true }
            if backend.learning { backendObject["Learning"] = true }
            if backend.directRouting { backendObject["DirectRouting"] = true }
        }
        var object: [String: Any] = ["Network": network.description, "SubnetLen": subnetLength, "Backend": backendObject]
        if let ipv6 {
            object["EnableIPv6"] = true
            object["IPv6Network"] = ipv6.network.description
            object["IPv6SubnetLen"] = ipv6.subnetLength
        }
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

    /// A boolean key; `nil` when absent, an error naming the key when not true or false.
    static func bool(_ object: [String: Any], _ key: String, in section: String = "") throws(OverlayError) -> Bool? {
        guard let raw = value(object, key) else { return nil }
        guard raw is Bool, let flag = raw as? Bool else {
            throw OverlayError(.invalidConfig, "\"\(section)\(key)\" must be true or false, not \(raw)")
        }
        return flag
    }

    static func value(_ object: [String: Any], _ key: String) -> Any? {
        if let exact = object[key] { return exact is NSNull ? nil : exact }
        let match = object.first { $0.key.lowercased() == key.lowercased() }?.value
        return match is NSNull ? nil : match
    }

    static func excerpt(_ data: Data) -> String {
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

/// `EnableIPv6`, `IPv6Network` and `IPv6SubnetLen`: every node also leases a subnet of `network`.
public struct IPv6Settings: Sendable, Hashable {
    public var network: IPv6CIDR
    public var subnetLength: Int

    public init(network: IPv6CIDR, subnetLength: Int = 64) {
        self.network = network
        self.subnetLength = subnetLength
    }
}

/// The `Backend` section of the network config: flannel's vxlan options, each honoured; any other
/// key is refused by name rather than silently ignored.
public struct BackendConfig: Sendable, Hashable {
    public var type: BackendType
    public var vni: UInt32
    public var port: UInt16
    /// The underlay MTU to size the device for (`MTU`), instead of the interface's own.
    public var mtu: Int?
    /// Group Based Policy extension on the VXLAN device (`GBP`).
    public var gbp: Bool
    /// Plain routes to peers on this node's L2 segment, VXLAN to the rest (`DirectRouting`).
    public var directRouting: Bool
    /// Kernel learning of remote MACs on the device (`Learning`); entries are programmed either way.
    public var learning: Bool

    public init(type: BackendType = .vxlan, vni: UInt32 = NetworkConfig.defaultVNI,
                port: UInt16 = NetworkConfig.defaultPort, mtu: Int? = nil, gbp: Bool = false,
                directRouting: Bool = false, learning: Bool = false) {
        self.type = type
        self.vni = vni
        self.port = port
        self.mtu = mtu
        self.gbp = gbp
        self.directRouting = directRouting
        self.learning = learning
    }

    static let vxlanKeys = ["Type", "VNI", "Port", "MTU", "GBP", "DirectRouting", "Learning"]

    /// What VXLAN over IPv4 adds to a packet (`VXLANBackend.encapsulationOverhead`), kept here so
    /// this file reads alone (the store-values fuzz target compiles it).
    static let vxlanOverhead = 50

    /// Parses the section; every refusal names `Backend.<key>` and the value.
    init(section: [String: Any]) throws(OverlayError) {
        self.init()
        if let type = NetworkConfig.value(section, "Type") {
            guard let text = type as? String, let kind = BackendType(rawValue: text.lowercased()) else {
                throw OverlayError(.invalidConfig, "\"Backend.Type\" \(type) is not supported; use vxlan or host-gw")
            }
            self.type = kind
        }
        let known = type == .vxlan ? Self.vxlanKeys : ["Type"]
        for key in section.keys where !known.contains(where: { $0.lowercased() == key.lowercased() }) {
            let which = type == .vxlan ? "vxlan options are \(Self.vxlanKeys.dropFirst().joined(separator: ", "))"
                : "host-gw takes no options"
            throw OverlayError(.invalidConfig, "\"Backend.\(key)\" is not supported for \(type.rawValue) (\(which))")
        }
        if let vni = NetworkConfig.value(section, "VNI") {
            guard let number = vni as? Int, (1...16_777_215).contains(number) else {
                throw OverlayError(.invalidConfig, "\"Backend.VNI\" \(vni) is not a VNI (1-16777215)")
            }
            self.vni = UInt32(number)
        }
        if let port = NetworkConfig.value(section, "Port") {
            guard let number = port as? Int, (1...65535).contains(number) else {
                throw OverlayError(.invalidConfig, "\"Backend.Port\" \(port) is not a UDP port")
            }
            self.port = UInt16(number)
        }
        if let mtu = NetworkConfig.value(section, "MTU") {
            guard let number = mtu as? Int, (Self.vxlanOverhead + 576...65535).contains(number)
            else {
                throw OverlayError(.invalidConfig, "\"Backend.MTU\" \(mtu) is not an underlay MTU "
                    + "(\(Self.vxlanOverhead + 576)-65535: pods get it minus 50)")
            }
            self.mtu = number
        }
        gbp = try NetworkConfig.bool(section, "GBP", in: "Backend.") ?? false
        directRouting = try NetworkConfig.bool(section, "DirectRouting", in: "Backend.") ?? false
        learning = try NetworkConfig.bool(section, "Learning", in: "Backend.") ?? false
    }
}

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// A hostPort mapping from the `portMappings` capability (`runtimeConfig.portMappings`).
public struct PortMapping: Sendable, Hashable, Codable {
    public var hostPort: Int
    public var containerPort: Int
    public var `protocol`: String?
    public var hostIP: String?

    public init(hostPort: Int, containerPort: Int, protocol: String? = "tcp", hostIP: String? = nil) {
        self.hostPort = hostPort
        self.containerPort = containerPort
        self.protocol = `protocol`
        self.hostIP = hostIP
    }
}

/// The network configuration strait-cni reads on stdin: its own keys (documented in cni/README.md)
/// and the ones the runtime inserts (`name`, `cniVersion`, `runtimeConfig`, `prevResult`, `args`).
public struct NetworkConfig: Sendable, Decodable {
    public struct RuntimeConfig: Sendable, Decodable {
        public var portMappings: [PortMapping]?
        public var ips: [String]?
        /// The `mac` capability: the pod interface's MAC.
        public var mac: String?
        /// The `dns` capability: nameservers, domain, search and options for the result.
        public var dns: JSONValue?
    }

    /// `subnet` is a CIDR, or a list of them for dual stack.
    public enum Subnets: Sendable, Decodable {
        case one(String)
        case many([String])

        public init(from decoder: any Decoder) throws {
            let container = try decoder.singleValueContainer()
            if let one = try? container.decode(String.self) { self = .one(one) } else { self = .many(try container.decode([String].self)) }
        }

        var all: [String] {
            switch self {
            case .one(let subnet): [subnet]
            case .many(let subnets): subnets
            }
        }
    }

    public var cniVersion: String
    public var name: String
    public var type: String
    public var subnetFile: String?
    public var subnet: Subnets?
    public var bridge: String?
    public var mtu: Int?
    public var dataDir: String?
    public var ipMasq: Bool?
    public var hairpinMode: Bool?
    public var isDefaultGateway: Bool?
    public var dns: JSONValue?
    public var runtimeConfig: RuntimeConfig?
    public var prevResult: CNIResult?
    /// `cni.dev/valid-attachments` (and the older `cni.dev/attachments`) for GC.
    public var validAttachments: [Attachment]?
    var ipam: JSONValue?

    public struct Attachment: Sendable, Hashable, Decodable {
        public var containerID: String
        public var ifname: String
    }

    public static let defaultSubnetFile = "/run/strait/subnet.env"
    public static let defaultBridge = "strait0"
    public static let defaultDataDir = "/var/lib/strait/ipam"

    public var subnetFilePath: String { subnetFile ?? Self.defaultSubnetFile }
    public var bridgeName: String { bridge ?? Self.defaultBridge }
    public var dataDirectory: String { dataDir ?? Self.defaultDataDir }
    public var subnetList: [String] { subnet?.all ?? [] }

    enum CodingKeys: String, CodingKey {
        case cniVersion, name, type, subnetFile, subnet, bridge, mtu, dataDir, ipMasq, hairpinMode
        case isDefaultGateway, dns, runtimeConfig, prevResult, ipam
        case validAttachments = "cni.dev/valid-attachments"
        case attachments = "cni.dev/attachments"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        cniVersion = try c.decode(String.self, forKey: .cniVersion)
        name = try c.decode(String.self, forKey: .name)
        type = try c.decode(String.self, forKey: .type)
        subnetFile = try c.decodeIfPresent(String.self, forKey: .subnetFile)
        subnet = try c.decodeIfPresent(Subnets.self, forKey: .subnet)
        bridge = try c.decodeIfPresent(String.self, forKey: .bridge)
        mtu = try c.decodeIfPresent(Int.self, forKey: .mtu)
        dataDir = try c.decodeIfPresent(String.self, forKey: .dataDir)
        ipMasq = try c.decodeIfPresent(Bool.self, forKey: .ipMasq)
        hairpinMode = try c.decodeIfPresent(Bool.self, forKey: .hairpinMode)
        isDefaultGateway = try c.decodeIfPresent(Bool.self, forKey: .isDefaultGateway)
        dns = try c.decodeIfPresent(JSONValue.self, forKey: .dns)
        runtimeConfig = try c.decodeIfPresent(RuntimeConfig.self, forKey: .runtimeConfig)
        prevResult = try c.decodeIfPresent(CNIResult.self, forKey: .prevResult)
        ipam = try c.decodeIfPresent(JSONValue.self, forKey: .ipam)
        validAttachments = try c.decodeIfPresent([Attachment].self, forKey: .validAttachments)
            ?? c.decodeIfPresent([Attachment].self, forKey: .attachments)
    }

    /// Decodes stdin. Malformed JSON is error 6; a well-formed config with a wrong or missing
    /// field is error 7 naming the field; a field strait-cni does not support is error 2.
    public static func decode(_ bytes: [UInt8]) throws(CNIError) -> NetworkConfig {
        let config: NetworkConfig
        do {
            config = try JSONDecoder().decode(NetworkConfig.self, from: Data(bytes))
        } catch let DecodingError.dataCorrupted(context) where context.codingPath.isEmpty {
            throw CNIError(.decodeFailure, "the network configuration on stdin is not JSON",
                           details: context.debugDescription)
        } catch let DecodingError.keyNotFound(key, context) {
            throw CNIError(.invalidNetworkConfig, "the network configuration has no \(path(context.codingPath + [key]))")
        } catch let DecodingError.typeMismatch(_, context) {
            throw CNIError(.invalidNetworkConfig, "field \(path(context.codingPath)) has the wrong type",
                           details: context.debugDescription)
        } catch let DecodingError.valueNotFound(_, context) {
            throw CNIError(.invalidNetworkConfig, "field \(path(context.codingPath)) is null")
        } catch {
            throw CNIError(.decodeFailure, "the network configuration could not be decoded", details: "\(error)")
        }
        try config.validate()
        return config
    }

    /// Six `:`-separated hex octets with the multicast bit clear.
    static func isUnicastMAC(_ text: String) -> Bool {
        let octets = text.split(separator: ":", omittingEmptySubsequences: false)
        guard octets.count == 6, octets.allSatisfy({ $0.count == 2 }) else { return false }
        let bytes = octets.compactMap { UInt8($0, radix: 16) }
        return bytes.count == 6 && bytes[0] & 1 == 0
    }

    private static func path(_ keys: [any CodingKey]) -> String {
        keys.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".")
    }

    private func validate() throws(CNIError) {
        if let ipam {
            let type = ipam["type"]?.stringValue ?? "?"
            throw CNIError(.unsupportedField, "field ipam (type \(type)) is not supported: strait-cni assigns addresses itself",
                           details: "remove the ipam section; use subnet or subnetFile")
        }
        do throws(CNIError) {
            try CNIEnvironment.validateContainerID(name)
        } catch {
            throw CNIError(.invalidNetworkConfig, "network name \"\(name)\" has characters the spec does not allow")
        }
        if let mtu, !(576...65535).contains(mtu) {
            throw CNIError(.invalidNetworkConfig, "mtu \(mtu) is out of range (576-65535)")
        }
        if let bridge {
            do throws(CNIError) { try CNIEnvironment.validateInterfaceName(bridge) } catch {
                throw CNIError(.invalidNetworkConfig, "bridge \"\(bridge)\" is not a valid interface name")
            }
        }
        if let mac = runtimeConfig?.mac, !Self.isUnicastMAC(mac) {
            throw CNIError(.invalidNetworkConfig,
                           "runtimeConfig.mac \"\(mac)\" is not a unicast MAC address like 0a:58:0a:f4:01:05")
        }
        for mapping in runtimeConfig?.portMappings ?? [] {
            guard (1...65535).contains(mapping.hostPort), (1...65535).contains(mapping.containerPort) else {
                throw CNIError(.invalidNetworkConfig, "portMappings: hostPort \(mapping.hostPort) → containerPort \(mapping.containerPort) is out of range")
            }
            let proto = (mapping.protocol ?? "tcp").lowercased()
            guard ["tcp", "udp", "sctp"].contains(proto) else {
                throw CNIError(.invalidNetworkConfig, "portMappings: protocol \"\(mapping.protocol ?? "")\" is not tcp, udp or sctp")
            }
        }
    }
}

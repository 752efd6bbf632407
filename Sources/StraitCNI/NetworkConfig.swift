/// A hostPort mapping from the `portMappings` capability (`runtimeConfig.portMappings`).
public struct PortMapping: Sendable, Hashable {
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

    init(json value: JSONValue, path: String) throws(JSONFieldError) {
        let fields = try JSONFields(value, path: path)
        hostPort = try fields.int("hostPort")
        containerPort = try fields.int("containerPort")
        `protocol` = try fields.optionalString("protocol")
        hostIP = try fields.optionalString("hostIP")
    }

    var json: JSONValue {
        var object = JSONObjectBuilder()
        object.set("hostPort", hostPort)
        object.set("containerPort", containerPort)
        object.set("protocol", `protocol`)
        object.set("hostIP", hostIP)
        return object.value
    }
}

/// The network configuration strait-cni reads on stdin: its own keys (documented in cni/README.md)
/// and the ones the runtime inserts (`name`, `cniVersion`, `runtimeConfig`, `prevResult`, `args`).
public struct NetworkConfig: Sendable {
    public struct RuntimeConfig: Sendable {
        public var portMappings: [PortMapping]?
        public var ips: [String]?
        /// The `mac` capability: the pod interface's MAC.
        public var mac: String?
        /// The `dns` capability: nameservers, domain, search and options for the result.
        public var dns: JSONValue?

        init(_ fields: JSONFields) throws(JSONFieldError) {
            if let elements = try fields.optionalArray("portMappings") {
                var mappings: [PortMapping] = []
                for element in elements { mappings.append(try PortMapping(json: element.value, path: element.path)) }
                portMappings = mappings
            }
            ips = try fields.optionalStrings("ips")
            mac = try fields.optionalString("mac")
            dns = fields.optional("dns")
        }
    }

    /// `subnet` is a CIDR, or a list of them for dual stack.
    public enum Subnets: Sendable {
        case one(String)
        case many([String])

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

    public struct Attachment: Sendable, Hashable {
        public var containerID: String
        public var ifname: String

        init(json value: JSONValue, path: String) throws(JSONFieldError) {
            let fields = try JSONFields(value, path: path)
            containerID = try fields.string("containerID")
            ifname = try fields.string("ifname")
        }
    }

    public static let defaultSubnetFile = "/run/strait/subnet.env"
    public static let defaultBridge = "strait0"
    public static let defaultDataDir = "/var/lib/strait/ipam"

    public var subnetFilePath: String { subnetFile ?? Self.defaultSubnetFile }
    public var bridgeName: String { bridge ?? Self.defaultBridge }
    public var dataDirectory: String { dataDir ?? Self.defaultDataDir }
    public var subnetList: [String] { subnet?.all ?? [] }

    /// Reads the configuration's members in the order the runtime's fields matter; the first
    /// missing or mistyped one is the error.
    init(json document: JSONValue) throws(JSONFieldError) {
        let fields = try JSONFields(document)
        cniVersion = try fields.string("cniVersion")
        name = try fields.string("name")
        type = try fields.string("type")
        subnetFile = try fields.optionalString("subnetFile")
        if let value = fields.optional("subnet") {
            if case .string(let one) = value {
                subnet = .one(one)
            } else {
                subnet = .many(try fields.optionalStrings("subnet") ?? [])
            }
        }
        bridge = try fields.optionalString("bridge")
        mtu = try fields.optionalInt("mtu")
        dataDir = try fields.optionalString("dataDir")
        ipMasq = try fields.optionalBool("ipMasq")
        hairpinMode = try fields.optionalBool("hairpinMode")
        isDefaultGateway = try fields.optionalBool("isDefaultGateway")
        dns = fields.optional("dns")
        runtimeConfig = try fields.optionalObject("runtimeConfig").map { fields throws(JSONFieldError) in
            try RuntimeConfig(fields)
        }
        prevResult = try fields.optional("prevResult").map { value throws(JSONFieldError) in
            try CNIResult(json: value, path: "prevResult")
        }
        ipam = fields.optional("ipam")
        var attachments = try fields.optionalArray("cni.dev/valid-attachments")
        if attachments == nil { attachments = try fields.optionalArray("cni.dev/attachments") }
        if let attachments {
            var valid: [Attachment] = []
            for element in attachments { valid.append(try Attachment(json: element.value, path: element.path)) }
            validAttachments = valid
        }
    }

    /// Decodes stdin. Malformed JSON is error 6; a well-formed config with a wrong or missing
    /// field is error 7 naming the field; a field strait-cni does not support is error 2.
    public static func decode(_ bytes: [UInt8]) throws(CNIError) -> NetworkConfig {
        let document: JSONValue
        do throws(JSONReader.SyntaxError) { document = try JSONReader.parse(bytes) } catch {
            throw CNIError(.decodeFailure, "the network configuration on stdin is not JSON", details: error.description)
        }
        return try decode(document)
    }

    /// Decodes a configuration already parsed (CNIPlugin parses stdin once).
    static func decode(_ document: JSONValue) throws(CNIError) -> NetworkConfig {
        let config: NetworkConfig
        do throws(JSONFieldError) { config = try NetworkConfig(json: document) } catch {
            switch error.problem {
            case .missing:
                throw CNIError(.invalidNetworkConfig, "the network configuration has no \(error.path)")
            case .null:
                throw CNIError(.invalidNetworkConfig, "field \(error.path) is null")
            case .wrongType(let expected, let found) where error.path.isEmpty:
                throw CNIError(.invalidNetworkConfig, "the network configuration is not a JSON object",
                               details: "expected \(expected), found \(found)")
            case .wrongType(let expected, let found):
                throw CNIError(.invalidNetworkConfig, "field \(error.path) has the wrong type",
                               details: "expected \(expected), found \(found)")
            }
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

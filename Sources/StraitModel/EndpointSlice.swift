/// A discovery.k8s.io/v1 EndpointSlice as the API server prints it.
public struct EndpointSlice: KubeResource {
    public static let apiVersion = "discovery.k8s.io/v1"
    public static let kind = "EndpointSlice"
    public static let isNamespaced = true
    /// The label that ties a slice to its Service.
    public static let serviceNameLabel = "kubernetes.io/service-name"

    public var metadata: ObjectMeta
    public var addressType: EndpointAddressType
    /// `endpoints: null` on the wire when empty.
    public var endpoints: [Endpoint]?
    public var ports: [EndpointPort]?

    public init(metadata: ObjectMeta, addressType: EndpointAddressType, endpoints: [Endpoint]? = nil,
                ports: [EndpointPort]? = nil) {
        self.metadata = metadata
        self.addressType = addressType
        self.endpoints = endpoints
        self.ports = ports
    }

    enum CodingKeys: String, CodingKey { case metadata, addressType, endpoints, ports }

    public init(from decoder: any Decoder) throws {
        try Self.checkTypeMeta(decoder)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        metadata = try c.decode(ObjectMeta.self, forKey: .metadata)
        addressType = try c.decode(EndpointAddressType.self, forKey: .addressType)
        endpoints = try c.decodeIfPresent([Endpoint].self, forKey: .endpoints)
        ports = try c.decodeIfPresent([EndpointPort].self, forKey: .ports)
    }

    public func encode(to encoder: any Encoder) throws {
        try Self.encodeTypeMeta(encoder)
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(metadata, forKey: .metadata)
        try c.encode(addressType, forKey: .addressType)
        try c.encodeIfPresent(endpoints, forKey: .endpoints)
        try c.encodeIfPresent(ports, forKey: .ports)
    }

    /// The Service this slice belongs to (`kubernetes.io/service-name`). A slice without it is
    /// valid Kubernetes, but the proxy cannot use it.
    public var serviceName: String? {
        metadata.labels[Self.serviceNameLabel].flatMap { $0.isEmpty ? nil : $0 }
    }

    /// Throws when the slice names no Service; call where a slice must feed the proxy.
    public func requireServiceName() throws(ModelError) -> String {
        guard let name = serviceName else {
            throw ModelError(object: reference, field: "metadata.labels",
                             problem: "has no \(String(reflecting: Self.serviceNameLabel)) label, so no Service uses it")
        }
        return name
    }

    public func validationErrors() -> [ModelError] {
        var v = Validator(object: reference)
        v.name("metadata.name", metadata.name, .dns1123Subdomain)
        v.namespace(metadata.namespace)
        v.known("addressType", addressType, "address type")
        let family: IPFamily? = switch addressType {
        case .ipv4: .ipv4
        case .ipv6: .ipv6
        default: nil
        }
        for (i, endpoint) in (endpoints ?? []).enumerated() {
            if endpoint.addresses.isEmpty { v.fail("endpoints[\(i)].addresses", "must have at least one address") }
            if let family {
                for (j, address) in endpoint.addresses.enumerated() {
                    v.ip("endpoints[\(i)].addresses[\(j)]", address, family: family)
                }
            }
        }
        var names: Set<String> = []
        for (i, port) in (ports ?? []).enumerated() {
            let field = "ports[\(i)]"
            if let name = port.name, !name.isEmpty { v.name("\(field).name", name, .dns1123Label) }
            if !names.insert(port.name ?? "").inserted {
                v.fail("\(field).name", "\(String(reflecting: port.name ?? "")) is duplicated")
            }
            if let number = port.port { v.port("\(field).port", number) }
            v.known("\(field).protocol", port.protocol, "protocol")
        }
        return v.errors
    }
}

public struct Endpoint: Sendable, Hashable, Codable {
    public var addresses: [String]
    public var conditions: EndpointConditions?
    public var hostname: String?
    public var targetRef: ObjectReference?
    public var nodeName: String?
    public var zone: String?
    public var hints: EndpointHints?

    public init(addresses: [String], conditions: EndpointConditions? = nil, nodeName: String? = nil,
                zone: String? = nil, hints: EndpointHints? = nil) {
        self.addresses = addresses
        self.conditions = conditions
        self.nodeName = nodeName
        self.zone = zone
        self.hints = hints
    }

    /// `conditions.ready`; unset means ready.
    public var isReady: Bool { conditions?.ready ?? true }
    /// `conditions.serving`; unset means serving.
    public var isServing: Bool { conditions?.serving ?? true }
    /// `conditions.terminating`; unset means not terminating.
    public var isTerminating: Bool { conditions?.terminating ?? false }

    /// The addresses that parse (all of them in a valid IPv4/IPv6 slice).
    public var ipAddresses: [IPAddress] { addresses.compactMap { IPAddress($0) } }
}

/// Unset conditions keep their wire meaning: nil `ready`/`serving` mean true, nil
/// `terminating` means false; see `Endpoint.isReady` and friends.
public struct EndpointConditions: Sendable, Hashable, Codable {
    public var ready: Bool?
    public var serving: Bool?
    public var terminating: Bool?

    public init(ready: Bool? = nil, serving: Bool? = nil, terminating: Bool? = nil) {
        self.ready = ready
        self.serving = serving
        self.terminating = terminating
    }
}

public struct EndpointHints: Sendable, Hashable, Codable {
    public var forZones: [ForZone]?
    public var forNodes: [ForNode]?

    public init(forZones: [ForZone]? = nil, forNodes: [ForNode]? = nil) {
        self.forZones = forZones
        self.forNodes = forNodes
    }
}

public struct ForZone: Sendable, Hashable, Codable {
    public var name: String
    public init(name: String) { self.name = name }
}

public struct ForNode: Sendable, Hashable, Codable {
    public var name: String
    public init(name: String) { self.name = name }
}

/// `targetRef` of an endpoint (usually the Pod).
public struct ObjectReference: Sendable, Hashable, Codable {
    public var kind: String?
    public var namespace: String?
    public var name: String?
    public var uid: String?

    public init(kind: String? = nil, namespace: String? = nil, name: String? = nil, uid: String? = nil) {
        self.kind = kind
        self.namespace = namespace
        self.name = name
        self.uid = uid
    }
}

public struct EndpointPort: Sendable, Hashable, Codable {
    public var name: String?
    public var `protocol`: TransportProtocol?
    /// nil means every port.
    public var port: Int?
    public var appProtocol: String?

    public init(name: String? = nil, protocol: TransportProtocol? = nil, port: Int? = nil) {
        self.name = name
        self.protocol = `protocol`
        self.port = port
    }

    /// `protocol`, TCP when unset.
    public var transportProtocol: TransportProtocol { self.protocol ?? .tcp }
}

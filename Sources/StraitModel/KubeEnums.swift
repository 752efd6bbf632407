/// A Kubernetes string enumeration that keeps values it does not know, as the API does: a newer
/// API server may send a value this build has never seen. Decoding never fails on the value;
/// `validate()` on the object reports unknown ones, and encoding writes them back unchanged.
public protocol OpenStringEnum: Sendable, Hashable, Codable, CustomStringConvertible {
    init(rawValue: String)
    var rawValue: String { get }
    /// The values this build understands, in the order error messages list them.
    static var known: [Self] { get }
}

extension OpenStringEnum {
    public var isKnown: Bool { Self.known.contains(self) }
    public var description: String { rawValue }

    public init(from decoder: any Decoder) throws {
        self.init(rawValue: try decoder.singleValueContainer().decode(String.self))
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(rawValue)
    }

    static var knownList: String { known.map(\.rawValue).joined(separator: ", ") }
}

/// `protocol` of a Service or EndpointSlice port.
public enum TransportProtocol: OpenStringEnum {
    case tcp, udp, sctp
    case unknown(String)

    public static let known: [TransportProtocol] = [.tcp, .udp, .sctp]

    public init(rawValue: String) {
        switch rawValue {
        case "TCP": self = .tcp
        case "UDP": self = .udp
        case "SCTP": self = .sctp
        default: self = .unknown(rawValue)
        }
    }

    public var rawValue: String {
        switch self {
        case .tcp: "TCP"
        case .udp: "UDP"
        case .sctp: "SCTP"
        case .unknown(let value): value
        }
    }
}

/// `spec.type` of a Service.
public enum ServiceType: OpenStringEnum {
    case clusterIP, nodePort, loadBalancer, externalName
    case unknown(String)

    public static let known: [ServiceType] = [.clusterIP, .nodePort, .loadBalancer, .externalName]

    public init(rawValue: String) {
        switch rawValue {
        case "ClusterIP": self = .clusterIP
        case "NodePort": self = .nodePort
        case "LoadBalancer": self = .loadBalancer
        case "ExternalName": self = .externalName
        default: self = .unknown(rawValue)
        }
    }

    public var rawValue: String {
        switch self {
        case .clusterIP: "ClusterIP"
        case .nodePort: "NodePort"
        case .loadBalancer: "LoadBalancer"
        case .externalName: "ExternalName"
        case .unknown(let value): value
        }
    }
}

/// `spec.externalTrafficPolicy` and `spec.internalTrafficPolicy` of a Service.
public enum TrafficPolicy: OpenStringEnum {
    case cluster, local
    case unknown(String)

    public static let known: [TrafficPolicy] = [.cluster, .local]

    public init(rawValue: String) {
        switch rawValue {
        case "Cluster": self = .cluster
        case "Local": self = .local
        default: self = .unknown(rawValue)
        }
    }

    public var rawValue: String {
        switch self {
        case .cluster: "Cluster"
        case .local: "Local"
        case .unknown(let value): value
        }
    }
}

/// `spec.sessionAffinity` of a Service.
public enum SessionAffinity: OpenStringEnum {
    case none, clientIP
    case unknown(String)

    public static let known: [SessionAffinity] = [.none, .clientIP]

    public init(rawValue: String) {
        switch rawValue {
        case "None": self = .none
        case "ClientIP": self = .clientIP
        default: self = .unknown(rawValue)
        }
    }

    public var rawValue: String {
        switch self {
        case .none: "None"
        case .clientIP: "ClientIP"
        case .unknown(let value): value
        }
    }
}

/// `spec.ipFamilyPolicy` of a Service.
public enum IPFamilyPolicy: OpenStringEnum {
    case singleStack, preferDualStack, requireDualStack
    case unknown(String)

    public static let known: [IPFamilyPolicy] = [.singleStack, .preferDualStack, .requireDualStack]

    public init(rawValue: String) {
        switch rawValue {
        case "SingleStack": self = .singleStack
        case "PreferDualStack": self = .preferDualStack
        case "RequireDualStack": self = .requireDualStack
        default: self = .unknown(rawValue)
        }
    }

    public var rawValue: String {
        switch self {
        case .singleStack: "SingleStack"
        case .preferDualStack: "PreferDualStack"
        case .requireDualStack: "RequireDualStack"
        case .unknown(let value): value
        }
    }
}

/// `addressType` of an EndpointSlice.
public enum EndpointAddressType: OpenStringEnum {
    case ipv4, ipv6, fqdn
    case unknown(String)

    public static let known: [EndpointAddressType] = [.ipv4, .ipv6, .fqdn]

    public init(rawValue: String) {
        switch rawValue {
        case "IPv4": self = .ipv4
        case "IPv6": self = .ipv6
        case "FQDN": self = .fqdn
        default: self = .unknown(rawValue)
        }
    }

    public var rawValue: String {
        switch self {
        case .ipv4: "IPv4"
        case .ipv6: "IPv6"
        case .fqdn: "FQDN"
        case .unknown(let value): value
        }
    }
}

/// A port given as a number or as the name of a container port (`targetPort`).
public enum IntOrString: Sendable, Hashable, Codable, CustomStringConvertible {
    case int(Int)
    case string(String)

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let value = try? container.decode(Int.self) {
            self = .int(value)
        } else {
            self = .string(try container.decode(String.self))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .int(let value): try container.encode(value)
        case .string(let value): try container.encode(value)
        }
    }

    public var description: String {
        switch self {
        case .int(let value): String(value)
        case .string(let value): value
        }
    }
}

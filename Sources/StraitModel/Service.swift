/// A v1 Service as the API server prints it. Fields keep the wire values (IPs as text, unknown
/// enumeration values kept); `validationErrors()` says what Strait cannot use, and the
/// computed accessors apply the Kubernetes defaults.
public struct Service: KubeResource {
    public static let apiVersion = "v1"
    public static let kind = "Service"
    public static let isNamespaced = true

    public var metadata: ObjectMeta
    public var spec: ServiceSpec
    public var status: ServiceStatus?

    public init(metadata: ObjectMeta, spec: ServiceSpec, status: ServiceStatus? = nil) {
        self.metadata = metadata
        self.spec = spec
        self.status = status
    }

    enum CodingKeys: String, CodingKey { case metadata, spec, status }

    public init(from decoder: any Decoder) throws {
        try Self.checkTypeMeta(decoder)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        metadata = try c.decode(ObjectMeta.self, forKey: .metadata)
        spec = try c.decodeIfPresent(ServiceSpec.self, forKey: .spec) ?? ServiceSpec()
        status = try c.decodeIfPresent(ServiceStatus.self, forKey: .status)
    }

    public func encode(to encoder: any Encoder) throws {
        try Self.encodeTypeMeta(encoder)
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(metadata, forKey: .metadata)
        try c.encode(spec, forKey: .spec)
        try c.encodeIfPresent(status, forKey: .status)
    }
}

public struct ServiceSpec: Sendable, Hashable, Codable {
    public var type: ServiceType?
    public var selector: [String: String]?
    public var ports: [ServicePort]?
    public var clusterIP: String?
    public var clusterIPs: [String]?
    public var ipFamilies: [String]?
    public var ipFamilyPolicy: IPFamilyPolicy?
    public var externalIPs: [String]?
    public var externalName: String?
    public var sessionAffinity: SessionAffinity?
    public var sessionAffinityConfig: SessionAffinityConfig?
    public var externalTrafficPolicy: TrafficPolicy?
    public var internalTrafficPolicy: TrafficPolicy?
    public var healthCheckNodePort: Int?
    public var loadBalancerIP: String?
    public var loadBalancerSourceRanges: [String]?
    public var loadBalancerClass: String?
    public var allocateLoadBalancerNodePorts: Bool?
    public var publishNotReadyAddresses: Bool?
    public var trafficDistribution: String?

    public init(type: ServiceType? = nil, selector: [String: String]? = nil, ports: [ServicePort]? = nil,
                clusterIP: String? = nil, clusterIPs: [String]? = nil) {
        self.type = type
        self.selector = selector
        self.ports = ports
        self.clusterIP = clusterIP
        self.clusterIPs = clusterIPs
    }
}

public struct ServicePort: Sendable, Hashable, Codable {
    public var name: String?
    public var `protocol`: TransportProtocol?
    public var appProtocol: String?
    public var port: Int
    public var targetPort: IntOrString?
    public var nodePort: Int?

    public init(name: String? = nil, protocol: TransportProtocol? = nil, port: Int,
                targetPort: IntOrString? = nil, nodePort: Int? = nil) {
        self.name = name
        self.protocol = `protocol`
        self.port = port
        self.targetPort = targetPort
        self.nodePort = nodePort
    }

    /// `protocol`, TCP when unset.
    public var transportProtocol: TransportProtocol { self.protocol ?? .tcp }

    /// `targetPort`, the service port when unset (or 0, or "") as the API server defaults it.
    public var effectiveTargetPort: IntOrString {
        switch targetPort {
        case nil, .int(0), .string(""): .int(port)
        case let value?: value
        }
    }
}

public struct SessionAffinityConfig: Sendable, Hashable, Codable {
    public var clientIP: ClientIPConfig?

    public init(clientIP: ClientIPConfig? = nil) { self.clientIP = clientIP }
}

public struct ClientIPConfig: Sendable, Hashable, Codable {
    public var timeoutSeconds: Int?

    public init(timeoutSeconds: Int? = nil) { self.timeoutSeconds = timeoutSeconds }
}

public struct ServiceStatus: Sendable, Hashable, Codable {
    public var loadBalancer: LoadBalancerStatus?

    public init(loadBalancer: LoadBalancerStatus? = nil) { self.loadBalancer = loadBalancer }
}

public struct LoadBalancerStatus: Sendable, Hashable, Codable {
    public var ingress: [LoadBalancerIngress]?

    public init(ingress: [LoadBalancerIngress]? = nil) { self.ingress = ingress }
}

public struct LoadBalancerIngress: Sendable, Hashable, Codable {
    public var ip: String?
    public var hostname: String?
    /// `VIP` or `Proxy` (Kubernetes 1.30+).
    public var ipMode: String?

    public init(ip: String? = nil, hostname: String? = nil, ipMode: String? = nil) {
        self.ip = ip
        self.hostname = hostname
        self.ipMode = ipMode
    }
}

extension Service {
    /// The session affinity timeout Kubernetes defaults to (3 hours).
    public static let defaultSessionAffinityTimeout = 10800

    /// `spec.type`, ClusterIP when unset.
    public var type: ServiceType { spec.type ?? .clusterIP }

    /// `clusterIP: None`: no virtual IP, DNS returns the endpoints.
    public var isHeadless: Bool { spec.clusterIP == "None" }

    /// The cluster IPs that parse: `clusterIPs`, else `clusterIP`; empty when headless or unset.
    public var clusterIPAddresses: [IPAddress] {
        (spec.clusterIPs ?? spec.clusterIP.map { [$0] } ?? []).compactMap { IPAddress($0) }
    }

    public var externalIPAddresses: [IPAddress] { (spec.externalIPs ?? []).compactMap { IPAddress($0) } }

    /// `status.loadBalancer.ingress[].ip` that parse; hostname-only entries are skipped.
    public var loadBalancerIngressAddresses: [IPAddress] {
        (status?.loadBalancer?.ingress ?? []).compactMap { $0.ip.flatMap { IPAddress($0) } }
    }

    public var loadBalancerSourceCIDRs: [IPCIDR] {
        (spec.loadBalancerSourceRanges ?? []).compactMap { IPCIDR($0) }
    }

    public var externalTrafficPolicy: TrafficPolicy { spec.externalTrafficPolicy ?? .cluster }
    public var internalTrafficPolicy: TrafficPolicy { spec.internalTrafficPolicy ?? .cluster }

    /// The ClientIP affinity timeout in seconds, nil when affinity is not ClientIP.
    public var sessionAffinityTimeout: Int? {
        guard spec.sessionAffinity == .clientIP else { return nil }
        return spec.sessionAffinityConfig?.clientIP?.timeoutSeconds ?? Self.defaultSessionAffinityTimeout
    }

    public var ports: [ServicePort] { spec.ports ?? [] }

    public func validationErrors() -> [ModelError] {
        var v = Validator(object: reference)
        v.name("metadata.name", metadata.name, .dns1035Label)
        v.namespace(metadata.namespace)
        v.known("spec.type", spec.type, "service type")
        let isExternalName = spec.type == .externalName
        if isExternalName && (spec.externalName ?? "").isEmpty {
            v.fail("spec.externalName", "is required for type ExternalName")
        }

        for (field, text) in [("spec.clusterIP", spec.clusterIP)] + (spec.clusterIPs ?? []).enumerated().map({
            ("spec.clusterIPs[\($0.offset)]", $0.element)
        }) {
            guard let text, text != "", text != "None" else { continue }
            v.ip(field, text)
        }
        if let ip = spec.clusterIP, let first = spec.clusterIPs?.first, ip != first {
            v.fail("spec.clusterIPs[0]", "\(String(reflecting: first)) must equal spec.clusterIP \(String(reflecting: ip))")
        }
        for (i, family) in (spec.ipFamilies ?? []).enumerated() where IPFamily(rawValue: family) == nil {
            v.fail("spec.ipFamilies[\(i)]", "\(String(reflecting: family)) is not a supported IP family (IPv4, IPv6)")
        }
        v.known("spec.ipFamilyPolicy", spec.ipFamilyPolicy, "IP family policy")

        let ports = spec.ports ?? []
        var names: Set<String> = []
        var keys: Set<String> = []
        for (i, port) in ports.enumerated() {
            let field = "spec.ports[\(i)]"
            if let name = port.name, !name.isEmpty {
                v.name("\(field).name", name, .dns1123Label)
                if !names.insert(name).inserted { v.fail("\(field).name", "\(String(reflecting: name)) is duplicated") }
            } else if ports.count > 1 {
                v.fail("\(field).name", "is required when there is more than one port")
            }
            v.port("\(field).port", port.port)
            v.known("\(field).protocol", port.protocol, "protocol")
            if !keys.insert("\(port.port)/\(port.transportProtocol.rawValue)").inserted {
                v.fail("\(field)", "port \(port.port)/\(port.transportProtocol.rawValue) is duplicated")
            }
            switch port.targetPort {
            case .int(let number)? where number != 0: v.port("\(field).targetPort", number)
            case .string(let name)? where !name.isEmpty: v.portName("\(field).targetPort", name)
            default: break
            }
            if let nodePort = port.nodePort, nodePort != 0 { v.port("\(field).nodePort", nodePort) }
        }

        v.known("spec.sessionAffinity", spec.sessionAffinity, "session affinity")
        if let timeout = spec.sessionAffinityConfig?.clientIP?.timeoutSeconds, !(1...86400).contains(timeout) {
            v.fail("spec.sessionAffinityConfig.clientIP.timeoutSeconds", "\(timeout) is out of range (1-86400)")
        }
        v.known("spec.externalTrafficPolicy", spec.externalTrafficPolicy, "traffic policy")
        v.known("spec.internalTrafficPolicy", spec.internalTrafficPolicy, "traffic policy")
        if let port = spec.healthCheckNodePort, port != 0 { v.port("spec.healthCheckNodePort", port) }
        for (i, ip) in (spec.externalIPs ?? []).enumerated() { v.ip("spec.externalIPs[\(i)]", ip) }
        if let ip = spec.loadBalancerIP, !ip.isEmpty { v.ip("spec.loadBalancerIP", ip) }
        for (i, range) in (spec.loadBalancerSourceRanges ?? []).enumerated() {
            v.cidr("spec.loadBalancerSourceRanges[\(i)]", range)
        }
        for (i, ingress) in (status?.loadBalancer?.ingress ?? []).enumerated() {
            if let ip = ingress.ip { v.ip("status.loadBalancer.ingress[\(i)].ip", ip) }
        }
        return v.errors
    }
}

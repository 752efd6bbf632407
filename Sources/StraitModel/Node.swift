/// A v1 Node: what the overlay and proxy read (pod CIDRs, addresses, labels).
public struct Node: KubeResource {
    public static let apiVersion = "v1"
    public static let kind = "Node"
    public static let isNamespaced = false

    public var metadata: ObjectMeta
    public var spec: NodeSpec?
    public var status: NodeStatus?

    public init(metadata: ObjectMeta, spec: NodeSpec? = nil, status: NodeStatus? = nil) {
        self.metadata = metadata
        self.spec = spec
        self.status = status
    }

    enum CodingKeys: String, CodingKey { case metadata, spec, status }

    public init(from decoder: any Decoder) throws {
        try Self.checkTypeMeta(decoder)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        metadata = try c.decode(ObjectMeta.self, forKey: .metadata)
        spec = try c.decodeIfPresent(NodeSpec.self, forKey: .spec)
        status = try c.decodeIfPresent(NodeStatus.self, forKey: .status)
    }

    public func encode(to encoder: any Encoder) throws {
        try Self.encodeTypeMeta(encoder)
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(metadata, forKey: .metadata)
        try c.encodeIfPresent(spec, forKey: .spec)
        try c.encodeIfPresent(status, forKey: .status)
    }

    /// `spec.podCIDRs`, else `spec.podCIDR`, the ones that parse.
    public var podCIDRs: [IPCIDR] {
        (spec?.podCIDRs ?? spec?.podCIDR.map { [$0] } ?? []).compactMap { IPCIDR($0) }
    }

    /// `status.addresses` of type InternalIP that parse, in order.
    public var internalIPs: [IPAddress] { addresses(ofType: "InternalIP") }
    /// `status.addresses` of type ExternalIP that parse, in order.
    public var externalIPs: [IPAddress] { addresses(ofType: "ExternalIP") }

    private func addresses(ofType type: String) -> [IPAddress] {
        (status?.addresses ?? []).filter { $0.type == type }.compactMap { IPAddress($0.address) }
    }

    public func validationErrors() -> [ModelError] {
        var v = Validator(object: reference)
        v.name("metadata.name", metadata.name, .dns1123Subdomain)
        if let cidr = spec?.podCIDR, !cidr.isEmpty { v.cidr("spec.podCIDR", cidr) }
        for (i, cidr) in (spec?.podCIDRs ?? []).enumerated() { v.cidr("spec.podCIDRs[\(i)]", cidr) }
        if let cidr = spec?.podCIDR, let first = spec?.podCIDRs?.first, cidr != first {
            v.fail("spec.podCIDRs[0]", "\(String(reflecting: first)) must equal spec.podCIDR \(String(reflecting: cidr))")
        }
        for (i, address) in (status?.addresses ?? []).enumerated()
        where address.type == "InternalIP" || address.type == "ExternalIP" {
            v.ip("status.addresses[\(i)].address", address.address)
        }
        return v.errors
    }
}

public struct NodeSpec: Sendable, Hashable, Codable {
    public var podCIDR: String?
    public var podCIDRs: [String]?
    public var providerID: String?
    public var unschedulable: Bool?
    /// The proxy reads one: the cluster autoscaler's `ToBeDeletedByClusterAutoscaler`.
    public var taints: [Taint]?

    public init(podCIDR: String? = nil, podCIDRs: [String]? = nil, taints: [Taint]? = nil) {
        self.podCIDR = podCIDR
        self.podCIDRs = podCIDRs
        self.taints = taints
    }
}

/// `spec.taints[]` of a Node.
public struct Taint: Sendable, Hashable, Codable {
    public var key: String
    public var value: String?
    /// NoSchedule, PreferNoSchedule or NoExecute.
    public var effect: String?

    public init(key: String, value: String? = nil, effect: String? = nil) {
        self.key = key
        self.value = value
        self.effect = effect
    }
}

public struct NodeStatus: Sendable, Hashable, Codable {
    public var addresses: [NodeAddress]?

    public init(addresses: [NodeAddress]? = nil) { self.addresses = addresses }
}

/// `type` is InternalIP, ExternalIP, Hostname, InternalDNS or ExternalDNS.
public struct NodeAddress: Sendable, Hashable, Codable {
    public var type: String
    public var address: String

    public init(type: String, address: String) {
        self.type = type
        self.address = address
    }
}

/// `metadata` of a Kubernetes object: the fields Strait reads. Timestamps stay as the RFC 3339
/// text the API server writes. Empty `labels`/`annotations` are not written back.
public struct ObjectMeta: Sendable, Hashable, Codable {
    public var name: String
    public var namespace: String?
    public var uid: String?
    public var resourceVersion: String?
    public var generation: Int?
    public var creationTimestamp: String?
    public var deletionTimestamp: String?
    public var labels: [String: String]
    public var annotations: [String: String]

    public init(name: String, namespace: String? = nil, uid: String? = nil, resourceVersion: String? = nil,
                labels: [String: String] = [:], annotations: [String: String] = [:]) {
        self.name = name
        self.namespace = namespace
        self.uid = uid
        self.resourceVersion = resourceVersion
        self.labels = labels
        self.annotations = annotations
    }

    enum CodingKeys: String, CodingKey {
        case name, namespace, uid, resourceVersion, generation, creationTimestamp, deletionTimestamp
        case labels, annotations
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        name = try c.decodeIfPresent(String.self, forKey: .name) ?? ""
        namespace = try c.decodeIfPresent(String.self, forKey: .namespace)
        uid = try c.decodeIfPresent(String.self, forKey: .uid)
        resourceVersion = try c.decodeIfPresent(String.self, forKey: .resourceVersion)
        generation = try c.decodeIfPresent(Int.self, forKey: .generation)
        creationTimestamp = try c.decodeIfPresent(String.self, forKey: .creationTimestamp)
        deletionTimestamp = try c.decodeIfPresent(String.self, forKey: .deletionTimestamp)
        labels = try c.decodeIfPresent([String: String].self, forKey: .labels) ?? [:]
        annotations = try c.decodeIfPresent([String: String].self, forKey: .annotations) ?? [:]
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(name, forKey: .name)
        try c.encodeIfPresent(namespace, forKey: .namespace)
        try c.encodeIfPresent(uid, forKey: .uid)
        try c.encodeIfPresent(resourceVersion, forKey: .resourceVersion)
        try c.encodeIfPresent(generation, forKey: .generation)
        try c.encodeIfPresent(creationTimestamp, forKey: .creationTimestamp)
        try c.encodeIfPresent(deletionTimestamp, forKey: .deletionTimestamp)
        if !labels.isEmpty { try c.encode(labels, forKey: .labels) }
        if !annotations.isEmpty { try c.encode(annotations, forKey: .annotations) }
    }

    /// True once the API server has set `deletionTimestamp`.
    public var isDeleting: Bool { deletionTimestamp != nil }
}

/// What every top-level Kubernetes kind Strait reads has in common.
public protocol KubeResource: Sendable, Hashable, Codable {
    static var apiVersion: String { get }
    static var kind: String { get }
    static var isNamespaced: Bool { get }
    var metadata: ObjectMeta { get set }
    /// Every problem that would stop Strait using the object; empty when valid.
    func validationErrors() -> [ModelError]
}

extension KubeResource {
    /// `Service default/web`, `Node node-1`. A namespaced object without a namespace is shown in
    /// `default`, where `strait apply` puts it.
    public var reference: String {
        Self.isNamespaced
            ? "\(Self.kind) \(metadata.namespace ?? "default")/\(metadata.name)"
            : "\(Self.kind) \(metadata.name)"
    }

    /// Throws the first problem `validationErrors()` finds.
    public func validate() throws(ModelError) {
        if let first = validationErrors().first { throw first }
    }
}

/// The `apiVersion`/`kind` header every object carries on the wire.
enum TypeMetaKeys: String, CodingKey {
    case apiVersion, kind
}

extension KubeResource {
    /// Refuses a document whose `kind`/`apiVersion` name another type; absent ones are allowed
    /// (items of a typed list such as `ServiceList` often omit them).
    static func checkTypeMeta(_ decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: TypeMetaKeys.self)
        if let kind = try c.decodeIfPresent(String.self, forKey: .kind), kind != Self.kind {
            throw DecodingError.dataCorruptedError(forKey: .kind, in: c,
                debugDescription: "expected kind \(Self.kind), found \(String(reflecting: kind))")
        }
        if let version = try c.decodeIfPresent(String.self, forKey: .apiVersion), version != Self.apiVersion {
            throw DecodingError.dataCorruptedError(forKey: .apiVersion, in: c,
                debugDescription: "\(Self.kind) must have apiVersion \(Self.apiVersion), found \(String(reflecting: version))")
        }
    }

    static func encodeTypeMeta(_ encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: TypeMetaKeys.self)
        try c.encode(Self.apiVersion, forKey: .apiVersion)
        try c.encode(Self.kind, forKey: .kind)
    }
}

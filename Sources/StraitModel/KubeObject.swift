/// One object of a kind Strait reads, chosen by `kind` and `apiVersion` when decoding.
public enum KubeObject: Sendable, Hashable, Codable, CustomStringConvertible {
    case service(Service)
    case endpointSlice(EndpointSlice)
    case node(Node)

    /// The kinds, as `apiVersion kind`, for error messages.
    public static let supportedKinds = "v1 Service, discovery.k8s.io/v1 EndpointSlice, v1 Node"

    /// Set to a kind name (`"Service"`) in the decoder's `userInfo` to decode objects that omit
    /// `kind`, as items of a `ServiceList` may.
    public static let defaultKindKey = CodingUserInfoKey(rawValue: "strait.defaultKind")!

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: TypeMetaKeys.self)
        let defaultKind = decoder.userInfo[Self.defaultKindKey] as? String
        guard let kind = try c.decodeIfPresent(String.self, forKey: .kind) ?? defaultKind else {
            throw DecodingError.keyNotFound(TypeMetaKeys.kind, .init(codingPath: c.codingPath,
                debugDescription: "the object has no kind"))
        }
        switch kind {
        case Service.kind: self = .service(try Service(from: decoder))
        case EndpointSlice.kind: self = .endpointSlice(try EndpointSlice(from: decoder))
        case Node.kind: self = .node(try Node(from: decoder))
        default:
            throw DecodingError.dataCorruptedError(forKey: .kind, in: c,
                debugDescription: "unsupported kind \(String(reflecting: kind)); Strait reads \(Self.supportedKinds)")
        }
    }

    public func encode(to encoder: any Encoder) throws {
        switch self {
        case .service(let object): try object.encode(to: encoder)
        case .endpointSlice(let object): try object.encode(to: encoder)
        case .node(let object): try object.encode(to: encoder)
        }
    }

    public var resource: any KubeResource {
        switch self {
        case .service(let object): object
        case .endpointSlice(let object): object
        case .node(let object): object
        }
    }

    public var kind: String { type(of: resource).kind }
    public var apiVersion: String { type(of: resource).apiVersion }
    public var metadata: ObjectMeta { resource.metadata }
    /// `Service default/web`.
    public var reference: String { resource.reference }
    public var description: String { reference }

    public func validationErrors() -> [ModelError] { resource.validationErrors() }

    public func validate() throws(ModelError) {
        if let first = validationErrors().first { throw first }
    }
}

/// A Kubernetes list: `kind: List` with mixed items, or a typed list (`ServiceList`,
/// `EndpointSliceList`, `NodeList`) whose items may omit `kind`.
public struct KubeList: Sendable, Hashable, Codable {
    public var apiVersion: String
    public var kind: String
    public var resourceVersion: String?
    public var items: [KubeObject]

    public init(items: [KubeObject], kind: String = "List", apiVersion: String = "v1") {
        self.apiVersion = apiVersion
        self.kind = kind
        self.items = items
    }

    /// True for `List` and `<Kind>List`.
    public static func isList(kind: String) -> Bool { kind.hasSuffix("List") }

    enum CodingKeys: String, CodingKey { case apiVersion, kind, metadata, items }
    enum MetaKeys: String, CodingKey { case resourceVersion }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        apiVersion = try c.decodeIfPresent(String.self, forKey: .apiVersion) ?? "v1"
        kind = try c.decode(String.self, forKey: .kind)
        guard Self.isList(kind: kind) else {
            throw DecodingError.dataCorruptedError(forKey: .kind, in: c,
                debugDescription: "expected a list kind, found \(String(reflecting: kind))")
        }
        if c.contains(.metadata) {
            let meta = try c.nestedContainer(keyedBy: MetaKeys.self, forKey: .metadata)
            resourceVersion = try meta.decodeIfPresent(String.self, forKey: .resourceVersion)
        }
        let itemKind = kind == "List" ? nil : String(kind.dropLast(4))
        var list = try c.nestedUnkeyedContainer(forKey: .items)
        var items: [KubeObject] = []
        while !list.isAtEnd {
            let itemDecoder = try list.superDecoder()
            items.append(try KubeObject(from: ItemDecoder(base: itemDecoder, defaultKind: itemKind)))
        }
        self.items = items
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(apiVersion, forKey: .apiVersion)
        try c.encode(kind, forKey: .kind)
        if let resourceVersion {
            var meta = c.nestedContainer(keyedBy: MetaKeys.self, forKey: .metadata)
            try meta.encode(resourceVersion, forKey: .resourceVersion)
        }
        try c.encode(items, forKey: .items)
    }
}

/// A decoder that adds the list's item kind to `userInfo`, so typed-list items without `kind`
/// decode.
private struct ItemDecoder: Decoder {
    let base: any Decoder
    let defaultKind: String?

    var codingPath: [any CodingKey] { base.codingPath }
    var userInfo: [CodingUserInfoKey: Any] {
        var info = base.userInfo
        if let defaultKind { info[KubeObject.defaultKindKey] = defaultKind }
        return info
    }
    func container<Key: CodingKey>(keyedBy type: Key.Type) throws -> KeyedDecodingContainer<Key> {
        try base.container(keyedBy: type)
    }
    func unkeyedContainer() throws -> any UnkeyedDecodingContainer { try base.unkeyedContainer() }
    func singleValueContainer() throws -> any SingleValueDecodingContainer { try base.singleValueContainer() }
}

/// Which object a change is about: kind, namespace and name (what the proxy's sources report).
public struct ProxyObjectID: Sendable, Hashable, Comparable, CustomStringConvertible {
    public enum Kind: String, Sendable, Hashable, Comparable {
        case service = "Service"
        case endpointSlice = "EndpointSlice"
        case node = "Node"

        public static func < (a: Kind, b: Kind) -> Bool { a.rawValue < b.rawValue }
    }

    public var kind: Kind
    /// "" for Nodes.
    public var namespace: String
    public var name: String

    public init(kind: Kind, namespace: String, name: String) {
        self.kind = kind
        self.namespace = namespace
        self.name = name
    }

    public init(_ object: KubeObject) {
        switch object {
        case .service(let service):
            self.init(kind: .service, namespace: service.metadata.namespace ?? "default", name: service.metadata.name)
        case .endpointSlice(let slice):
            self.init(kind: .endpointSlice, namespace: slice.metadata.namespace ?? "default", name: slice.metadata.name)
        case .node(let node):
            self.init(kind: .node, namespace: "", name: node.metadata.name)
        }
    }

    public var description: String { namespace.isEmpty ? "\(kind.rawValue) \(name)" : "\(kind.rawValue) \(namespace)/\(name)" }

    public static func < (a: ProxyObjectID, b: ProxyObjectID) -> Bool {
        (a.kind, a.namespace, a.name) < (b.kind, b.namespace, b.name)
    }
}

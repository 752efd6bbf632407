import Foundation
import StraitModel
import StraitProxy
import StraitStore

/// Kubernetes objects kept in Strait's store for standalone mode: the one owner of the key
/// layout, shared by `strait apply/get/delete` and the proxy's `StoreSource`.
///
/// - `/strait/services/<namespace>/<name>`: a v1 Service, as Kubernetes JSON;
/// - `/strait/endpointslices/<namespace>/<name>`: a discovery.k8s.io/v1 EndpointSlice;
/// - `/strait/nodes/<name>`: a v1 Node (the proxy reads its zone label).
public struct ObjectStore: Sendable {
    public let store: any Store

    public static let root = "/strait/"
    public static let servicesPrefix = "/strait/services/"
    public static let endpointSlicesPrefix = "/strait/endpointslices/"
    public static let nodesPrefix = "/strait/nodes/"

    public init(store: any Store) {
        self.store = store
    }

    /// Opens the store at `url` (a SQLite path or `sqlite:///…`, or `etcd://host:port,…` with the
    /// optional TLS files), as every `--store` flag takes it.
    public static func open(url: String, caFile: String? = nil, certFile: String? = nil,
                            keyFile: String? = nil) async throws -> ObjectStore {
        let tls = EtcdTLSFiles(caFile: caFile, certFile: certFile, keyFile: keyFile)
        return ObjectStore(store: try await openStore(url: url, tls: tls))
    }

    public func close() async { await store.close() }

    // MARK: Keys

    public static func key(for id: ProxyObjectID) -> String {
        switch id.kind {
        case .service: "\(servicesPrefix)\(id.namespace)/\(id.name)"
        case .endpointSlice: "\(endpointSlicesPrefix)\(id.namespace)/\(id.name)"
        case .node: "\(nodesPrefix)\(id.name)"
        }
    }

    /// The object a key holds, or nil for keys outside the layout.
    public static func id(forKey key: String) -> ProxyObjectID? {
        func split(_ rest: Substring) -> (String, String)? {
            let parts = rest.split(separator: "/", omittingEmptySubsequences: false)
            guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else { return nil }
            return (String(parts[0]), String(parts[1]))
        }
        if key.hasPrefix(servicesPrefix), let (ns, name) = split(key.dropFirst(servicesPrefix.count)) {
            return ProxyObjectID(kind: .service, namespace: ns, name: name)
        }
        if key.hasPrefix(endpointSlicesPrefix), let (ns, name) = split(key.dropFirst(endpointSlicesPrefix.count)) {
            return ProxyObjectID(kind: .endpointSlice, namespace: ns, name: name)
        }
        if key.hasPrefix(nodesPrefix) {
            let name = key.dropFirst(nodesPrefix.count)
            guard !name.isEmpty, !name.contains("/") else { return nil }
            return ProxyObjectID(kind: .node, namespace: "", name: String(name))
        }
        return nil
    }

    // MARK: Coding

    public struct DecodeError: Error, CustomStringConvertible {
        public var key: String
        public var reason: String
        public var description: String { "\(key): \(reason)" }
    }

    /// The object under `key`, which must be of the key's kind.
    public static func decode(key: String, value: Data) throws -> KubeObject {
        guard let id = id(forKey: key) else { throw DecodeError(key: key, reason: "not an object key") }
        let object: KubeObject
        do {
            object = try JSONDecoder().decode(KubeObject.self, from: value)
        } catch {
            throw DecodeError(key: key, reason: "not a readable \(id.kind.rawValue): \(error)")
        }
        guard ProxyObjectID(object) == id else {
            throw DecodeError(key: key, reason: "holds \(object.reference), not \(id)")
        }
        return object
    }

    public static func encode(_ object: KubeObject) throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return try encoder.encode(object)
    }

    /// Namespaced objects without a namespace go to `default`, as kubectl puts them.
    public static func normalized(_ object: KubeObject) -> KubeObject {
        switch object {
        case .service(var service):
            if (service.metadata.namespace ?? "").isEmpty { service.metadata.namespace = "default" }
            return .service(service)
        case .endpointSlice(var slice):
            if (slice.metadata.namespace ?? "").isEmpty { slice.metadata.namespace = "default" }
            return .endpointSlice(slice)
        case .node:
            return object
        }
    }

    // MARK: Reading

    /// Every stored object of `kind`, in key order; `namespace` nil means all namespaces.
    /// Unreadable values are skipped.
    public func list(_ kind: ProxyObjectID.Kind, namespace: String? = nil) async throws -> [KubeObject] {
        let prefix = switch kind {
        case .service: Self.servicesPrefix
        case .endpointSlice: Self.endpointSlicesPrefix
        case .node: Self.nodesPrefix
        }
        let scoped = namespace.map { kind == .node ? prefix : "\(prefix)\($0)/" } ?? prefix
        return try await store.list(prefix: scoped).items.compactMap { try? Self.decode(key: $0.key, value: $0.value) }
    }

    public func get(_ id: ProxyObjectID) async throws -> KubeObject? {
        let key = Self.key(for: id)
        return try await store.get(key).map { try Self.decode(key: key, value: $0.value) }
    }

    // MARK: Writing

    /// Every problem that stops `apply` writing `objects`: each object's `validationErrors()`,
    /// addresses and ports outside `ranges` (as the API server refuses them), and slices that name
    /// no Service, or a Service neither among `objects` nor in the store.
    public func problems(_ objects: [KubeObject], ranges: ClusterRanges = ClusterRanges()) async throws -> [ModelError] {
        var problems: [ModelError] = []
        let objects = objects.map(Self.normalized)
        let services = Set(objects.compactMap { object -> ProxyObjectID? in
            if case .service = object { ProxyObjectID(object) } else { nil }
        })
        var seen: Set<ProxyObjectID> = []
        for object in objects {
            if !seen.insert(ProxyObjectID(object)).inserted {
                problems.append(ModelError(object: object.reference, field: "metadata.name",
                                           problem: "appears more than once in the input"))
            }
            problems += object.validationErrors() + ranges.problems(object)
            guard case .endpointSlice(let slice) = object else { continue }
            guard let name = slice.serviceName else {
                problems.append(ModelError(object: slice.reference, field: "metadata.labels",
                    problem: "has no \(String(reflecting: EndpointSlice.serviceNameLabel)) label, so no Service uses it"))
                continue
            }
            let service = ProxyObjectID(kind: .service, namespace: slice.metadata.namespace ?? "default", name: name)
            if !services.contains(service), try await store.get(Self.key(for: service)) == nil {
                problems.append(ModelError(object: slice.reference,
                    field: "metadata.labels[\(String(reflecting: EndpointSlice.serviceNameLabel))]",
                    problem: "Service \(service.namespace)/\(name) does not exist (not in the input, not in the store)"))
            }
        }
        return problems
    }

    public enum ApplyOutcome: String, Sendable {
        case created, configured, unchanged
    }

    public struct Invalid: Error, CustomStringConvertible {
        public var problems: [ModelError]
        public var description: String { problems.map(\.description).joined(separator: "\n") }
    }

    /// Validates every object (`problems`) and writes nothing if any is bad (`Invalid`);
    /// otherwise creates or replaces each. Services are written before slices.
    public func apply(_ objects: [KubeObject], ranges: ClusterRanges = ClusterRanges())
        async throws -> [(object: KubeObject, outcome: ApplyOutcome)] {
        let problems = try await problems(objects, ranges: ranges)
        guard problems.isEmpty else { throw Invalid(problems: problems) }
        let ordered = objects.map(Self.normalized).enumerated().sorted { a, b in
            (Self.order(a.element), a.offset) < (Self.order(b.element), b.offset)
        }.map(\.element)
        var results: [(KubeObject, ApplyOutcome)] = []
        for object in ordered {
            let key = Self.key(for: ProxyObjectID(object))
            let value = try Self.encode(object)
            let existing = try await store.get(key)
            if existing?.value == value {
                results.append((object, .unchanged))
            } else {
                try await store.put(key, value: value)
                results.append((object, existing == nil ? .created : .configured))
            }
        }
        return results
    }

    private static func order(_ object: KubeObject) -> Int {
        switch object {
        case .node: 0
        case .service: 1
        case .endpointSlice: 2
        }
    }

    /// Deletes one object; returns whether it existed.
    @discardableResult
    public func delete(_ id: ProxyObjectID) async throws -> Bool {
        try await store.delete(Self.key(for: id))
    }

    /// `service/web`, `endpointslice.discovery.k8s.io/web-abc`, `node/node-1`, as kubectl prints them.
    public static func kubectlName(_ object: KubeObject) -> String {
        switch object {
        case .service(let s): "service/\(s.metadata.name)"
        case .endpointSlice(let s): "endpointslice.discovery.k8s.io/\(s.metadata.name)"
        case .node(let n): "node/\(n.metadata.name)"
        }
    }
}

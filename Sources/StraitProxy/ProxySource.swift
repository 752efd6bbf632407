import StraitModel

/// Which object a change is about.
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

/// What a source reports. A source first sends `.replaceAll` with everything it lists (the proxy
/// programs nothing before that), then single changes; after losing track (a compacted watch, a
/// 410 from the API server) it sends `.replaceAll` again.
public enum ProxySourceEvent: Sendable, Hashable {
    /// The complete current set of objects: anything not in it is gone.
    case replaceAll([KubeObject])
    /// An object was created or changed.
    case upsert(KubeObject)
    /// An object was deleted (or became unreadable).
    case delete(ProxyObjectID)
}

/// Where Services, EndpointSlices and this node's Node come from: Strait's store (`StoreSource`),
/// the Kubernetes API (later), or a test. The sync loop reads `events()` until cancelled; a source
/// retries its own transient failures and throws only when it cannot go on.
public protocol ProxySource: Sendable {
    func events() -> AsyncThrowingStream<ProxySourceEvent, any Error>
}

/// A source fed by hand: tests and embedders `send` events into it.
public final class ProxySourceFeed: ProxySource {
    private let stream: AsyncThrowingStream<ProxySourceEvent, any Error>
    private let continuation: AsyncThrowingStream<ProxySourceEvent, any Error>.Continuation

    public init() {
        (stream, continuation) = AsyncThrowingStream.makeStream()
    }

    /// The one stream of this feed; call once.
    public func events() -> AsyncThrowingStream<ProxySourceEvent, any Error> { stream }

    public func send(_ event: ProxySourceEvent) { continuation.yield(event) }

    public func finish(throwing error: (any Error)? = nil) { continuation.finish(throwing: error) }
}

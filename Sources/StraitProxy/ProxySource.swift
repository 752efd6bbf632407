import StraitModel

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

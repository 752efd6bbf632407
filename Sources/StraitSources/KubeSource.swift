import Logging
import StraitKube
import StraitModel
import StraitProxy

/// Services, EndpointSlices and this node's Node from the Kubernetes API, as kube-proxy watches
/// them: Services and slices without `service.kubernetes.io/service-proxy-name` (another proxy's)
/// and without `service.kubernetes.io/headless`, the Node by `metadata.name`. Each kind has its
/// own `Informer`; the first `.replaceAll` goes out only when every kind's first list is in.
/// After that a re-list (410 Gone, a restarted API server) is compared with what was sent and
/// only the differences go out, so a resumed source does not re-program everything.
public struct KubeSource: ProxySource {
    /// kube-proxy's label selector for Services and EndpointSlices.
    public static let labelSelector = "!service.kubernetes.io/service-proxy-name,!service.kubernetes.io/headless"

    public let client: KubeClient
    public let nodeName: String
    public let options: InformerOptions
    private let log: Logger

    /// `options` (page size, watch timeout, backoff) apply to all three informers; their
    /// selectors are set here.
    public init(client: KubeClient, nodeName: String, options: InformerOptions = .init(),
                log: Logger = Logger(label: "strait-proxy")) {
        self.client = client
        self.nodeName = nodeName
        self.options = options
        self.log = log
    }

    /// One kind's informer event, as the objects the proxy reads.
    enum Change: Sendable {
        case listed(ProxyObjectID.Kind, [KubeObject])
        case upsert(KubeObject)
        case delete(ProxyObjectID)
    }

    public func events() -> AsyncThrowingStream<ProxySourceEvent, any Error> {
        let (stream, continuation) = AsyncThrowingStream<ProxySourceEvent, any Error>.makeStream()
        let (changes, changeSink) = AsyncStream<Change>.makeStream()
        let kubeLog = KubeLog(debug: { [log] in log.debug("\($0)") }, info: { [log] in log.info("\($0)") },
                              warning: { [log] in log.warning("\($0)") })
        var labelled = options
        labelled.labelSelector = Self.labelSelector
        labelled.fieldSelector = nil
        var named = options
        named.labelSelector = nil
        named.fieldSelector = "metadata.name=\(nodeName)"

        let services = Informer<Service>(client: client, resource: .services, options: labelled, log: kubeLog)
        let slices = Informer<EndpointSlice>(client: client, resource: .endpointSlices,
                                             options: labelled, log: kubeLog)
        let nodes = Informer<Node>(client: client, resource: .nodes, options: named, log: kubeLog)
        let feeders = [
            Self.feed(services, .service, KubeObject.service, into: changeSink),
            Self.feed(slices, .endpointSlice, KubeObject.endpointSlice, into: changeSink),
            Self.feed(nodes, .node, KubeObject.node, into: changeSink),
        ]
        log.info("watching services, endpointslices and node \(nodeName) at \(client.connection)")

        let merger = Task {
            var merge = Merge()
            for await change in changes {
                for event in merge.apply(change) { continuation.yield(event) }
            }
            continuation.finish()
        }
        continuation.onTermination = { _ in
            feeders.forEach { $0.cancel() }
            merger.cancel()
            changeSink.finish()
        }
        return stream
    }

    private static func feed<Resource: KubeResource>(
        _ informer: Informer<Resource>, _ kind: ProxyObjectID.Kind, _ wrap: @escaping @Sendable (Resource) -> KubeObject,
        into sink: AsyncStream<Change>.Continuation
    ) -> Task<Void, Never> {
        Task {
            do {
                for try await event in informer.events() {
                    switch event {
                    case .listed(let items): sink.yield(.listed(kind, items.map(wrap)))
                    case .added(let object), .modified(let object): sink.yield(.upsert(wrap(object)))
                    case .deleted(let object): sink.yield(.delete(ProxyObjectID(wrap(object))))
                    }
                }
            } catch {
                // Informers retry on their own and end only when cancelled.
            }
        }
    }

    /// What was sent so far, and the rule for what to send next.
    struct Merge {
        var known: [ProxyObjectID: KubeObject] = [:]
        var listed: Set<ProxyObjectID.Kind> = []
        var synced = false

        mutating func apply(_ change: Change) -> [ProxySourceEvent] {
            switch change {
            case .listed(let kind, let objects):
                var fresh: [ProxyObjectID: KubeObject] = [:]
                for object in objects { fresh[ProxyObjectID(object)] = object }
                var events: [ProxySourceEvent] = []
                if synced {
                    for id in known.keys where id.kind == kind && fresh[id] == nil { events.append(.delete(id)) }
                    for (id, object) in fresh where known[id] != object { events.append(.upsert(object)) }
                }
                known = known.filter { $0.key.kind != kind }.merging(fresh) { _, new in new }
                listed.insert(kind)
                if !synced && listed.count == 3 {
                    synced = true
                    events.append(.replaceAll(known.keys.sorted().compactMap { known[$0] }))
                }
                return events
            case .upsert(let object):
                known[ProxyObjectID(object)] = object
                return synced ? [.upsert(object)] : []
            case .delete(let id):
                known[id] = nil
                return synced ? [.delete(id)] : []
            }
        }
    }
}

import Foundation
import StraitModel

/// How an informer lists and watches: selectors, page size, watch timeout, backoff.
public struct InformerOptions: Sendable {
    /// `labelSelector`, e.g. `!service.kubernetes.io/headless`.
    public var labelSelector: String?
    /// `fieldSelector`, e.g. `metadata.name=node-1`.
    public var fieldSelector: String?
    /// Items per list page (client-go's pager: 500).
    public var pageSize = 500
    /// The watch's `timeoutSeconds` is drawn from this range (client-go: 5 to 10 minutes).
    public var watchTimeout: ClosedRange<Int> = 300...600
    public var backoff = Backoff()

    public init(labelSelector: String? = nil, fieldSelector: String? = nil) {
        self.labelSelector = labelSelector
        self.fieldSelector = fieldSelector
    }
}

/// What an informer reports: the complete current set after every (re-)list, then single changes.
public enum InformerEvent<Resource: KubeResource>: Sendable {
    /// Everything that matches now; anything reported before and not in it is gone.
    case listed([Resource])
    case added(Resource)
    case modified(Resource)
    case deleted(Resource)
}

/// Messages for the operator; StraitKube has no logger of its own.
public struct KubeLog: Sendable {
    public var debug: @Sendable (String) -> Void
    public var info: @Sendable (String) -> Void
    public var warning: @Sendable (String) -> Void

    public init(debug: @escaping @Sendable (String) -> Void = { _ in }, info: @escaping @Sendable (String) -> Void,
                warning: @escaping @Sendable (String) -> Void) {
        self.debug = debug
        self.info = info
        self.warning = warning
    }

    public static let silent = KubeLog(info: { _ in }, warning: { _ in })
}

/// client-go's reflector for one kind: list in pages (`limit`/`continue`), then watch from the
/// list's resourceVersion with bookmarks and a server-side `timeoutSeconds`. When the watch ends
/// it resumes from the last version seen (an event's or a bookmark's); when the connection breaks
/// it does the same after a backoff with jitter; when the server answers 410 Gone (as a status or
/// a watch `ERROR` event: the version was compacted away) it lists again. Errors such as a refused
/// token are logged and retried, never thrown: the operator may fix them while it runs.
/// Equivalent: `kubectl get KIND -A -l SELECTOR --chunk-size N -w`.
public struct Informer<Resource: KubeResource>: Sendable {
    public typealias Options = InformerOptions

    public let client: KubeClient
    public let resource: KubeResourcePath
    public let options: Options
    public let log: KubeLog

    public init(client: KubeClient, resource: KubeResourcePath, options: Options = Options(), log: KubeLog = .silent) {
        self.client = client
        self.resource = resource
        self.options = options
        self.log = log
    }

    public func events() -> AsyncThrowingStream<InformerEvent<Resource>, any Error> {
        let (stream, continuation) = AsyncThrowingStream<InformerEvent<Resource>, any Error>.makeStream()
        let task = Task {
            var backoff = options.backoff
            var version: String?
            while !Task.isCancelled {
                // A watch that delivered anything was a success: a break after it starts a fresh backoff.
                let before = version
                do {
                    if version == nil {
                        let listed = try await list()
                        log.debug("\(resource): listed \(listed.items.count) in \(listed.pages) page(s) of up to "
                                  + "\(options.pageSize) at version \(listed.resourceVersion)")
                        continuation.yield(.listed(listed.items))
                        version = listed.resourceVersion
                    }
                    try await watch(from: &version) { continuation.yield($0) }
                    log.debug("watch \(resource): ended by the server; resuming from \(version ?? "")")
                    backoff.reset()
                } catch let error as KubeError where error.isGone {
                    log.info("\(resource): \(error.detail); listing again")
                    version = nil
                } catch {
                    if Task.isCancelled { break }
                    if version != before { backoff.reset() }
                    let delay = backoff.next()
                    log.warning("\(error); retrying in \(delay)")
                    try? await Task.sleep(for: delay)
                }
            }
            continuation.finish()
        }
        continuation.onTermination = { _ in task.cancel() }
        return stream
    }

    private var selectors: [(String, String)] {
        var query: [(String, String)] = []
        if let selector = options.labelSelector, !selector.isEmpty { query.append(("labelSelector", selector)) }
        if let selector = options.fieldSelector, !selector.isEmpty { query.append(("fieldSelector", selector)) }
        return query
    }

    /// What one complete list returned.
    public struct ListResult: Sendable {
        public var items: [Resource]
        public var resourceVersion: String
        /// Requests it took (`limit`/`continue` pages).
        public var pages: Int
    }

    /// Every page of a consistent list; starts over when a continue token expired (410).
    /// Equivalent: `kubectl get KIND -A --chunk-size N`.
    public func list() async throws -> ListResult {
        let operation = "list \(resource)"
        var items: [Resource] = []
        var token: String?
        var pages = 0
        while true {
            pages += 1
            var query = selectors + [("limit", "\(options.pageSize)")]
            if let token { query.append(("continue", token)) }
            let data: Data
            do {
                data = try await client.get(resource.path, query: query, operation: operation)
            } catch let error as KubeError where error.isGone && token != nil {
                log.info("\(resource): the list's continue token expired; listing from the start")
                items = []
                token = nil
                continue
            }
            let page: ListPage<Resource>
            do {
                page = try JSONDecoder().decode(ListPage<Resource>.self, from: data)
            } catch {
                throw KubeError(.decoding, operation: operation, detail: "not a \(Resource.kind)List: \(error)")
            }
            for item in page.items {
                switch item {
                case .success(let object): items.append(object)
                case .failure(let error): log.warning("\(operation): skipping an item: \(error)")
                }
            }
            guard let next = page.metadata.continue, !next.isEmpty else {
                return ListResult(items: items, resourceVersion: page.metadata.resourceVersion ?? "", pages: pages)
            }
            token = next
        }
    }

    /// One watch from `version` until the server ends it; `version` follows every event.
    func watch(from version: inout String?, _ yield: (InformerEvent<Resource>) -> Void) async throws {
        let operation = "watch \(resource)"
        let timeout = Int.random(in: options.watchTimeout)
        var query = selectors + [("watch", "true"), ("allowWatchBookmarks", "true"), ("timeoutSeconds", "\(timeout)")]
        if let version { query.append(("resourceVersion", version)) }
        let decoder = JSONDecoder()
        for try await line in client.watch(resource.path, query: query, operation: operation,
                                           timeout: .seconds(timeout + 60)) {
            let header: WatchHeader
            do {
                header = try decoder.decode(WatchHeader.self, from: line)
            } catch {
                throw KubeError(.decoding, operation: operation, detail: "not a watch event: \(error)")
            }
            switch header.type {
            case "BOOKMARK":
                if let seen = header.object?.metadata?.resourceVersion { version = seen }
            case "ERROR":
                let status = header.object
                throw KubeError(.status(status?.code ?? 500), operation: operation,
                                detail: "watch ERROR \(status?.reason ?? ""): \(status?.message ?? "")")
            case "ADDED", "MODIFIED", "DELETED":
                if let seen = header.object?.metadata?.resourceVersion { version = seen }
                let object: Resource
                do {
                    object = try decoder.decode(WatchObject<Resource>.self, from: line).object
                } catch {
                    log.warning("\(operation): skipping a \(header.type) event: \(error)")
                    continue
                }
                switch header.type {
                case "ADDED": yield(.added(object))
                case "MODIFIED": yield(.modified(object))
                default: yield(.deleted(object))
                }
            default:
                log.warning("\(operation): skipping an event of unknown type \(header.type)")
            }
        }
    }
}

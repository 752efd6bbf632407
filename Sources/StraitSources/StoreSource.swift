import struct Foundation.Data
import Logging
import StraitModel
import StraitProxy
import StraitStore

/// Services, EndpointSlices and Nodes from Strait's own store (`ObjectStore`'s key layout):
/// lists `/strait/` and sends `.replaceAll`, then watches from the list's revision; lists again
/// when the watch reports `.compacted` or fails (after `retryDelay`). A value that cannot be read
/// is logged and treated as a deleted object, so the rest keeps working.
public struct StoreSource: ProxySource {
    public let store: any Store
    public let retryDelay: Duration
    private let log: Logger

    public init(store: any Store, retryDelay: Duration = .seconds(1), log: Logger = Logger(label: "strait-proxy")) {
        self.store = store
        self.retryDelay = retryDelay
        self.log = log
    }

    public func events() -> AsyncThrowingStream<ProxySourceEvent, any Error> {
        let (stream, continuation) = AsyncThrowingStream<ProxySourceEvent, any Error>.makeStream()
        let task = Task {
            while !Task.isCancelled {
                do {
                    let (items, revision) = try await store.list(prefix: ObjectStore.root)
                    continuation.yield(.replaceAll(items.compactMap { item in
                        guard ObjectStore.id(forKey: item.key) != nil else { return nil }
                        return decode(item.key, item.value)
                    }))
                    watch: for try await event in store.watch(prefix: ObjectStore.root, afterRevision: revision) {
                        switch event {
                        case .put(let kv):
                            guard let id = ObjectStore.id(forKey: kv.key) else { continue }
                            if let object = decode(kv.key, kv.value) {
                                continuation.yield(.upsert(object))
                            } else {
                                continuation.yield(.delete(id))
                            }
                        case .delete(let key, _, _):
                            if let id = ObjectStore.id(forKey: key) { continuation.yield(.delete(id)) }
                        case .compacted(let revision):
                            log.info("store watch compacted at revision \(revision); listing again")
                            break watch
                        }
                    }
                } catch {
                    if Task.isCancelled { break }
                    log.warning("store source: \(error); listing again in \(retryDelay)")
                    try? await Task.sleep(for: retryDelay)
                }
            }
            continuation.finish()
        }
        continuation.onTermination = { _ in task.cancel() }
        return stream
    }

    private func decode(_ key: String, _ value: Data) -> KubeObject? {
        do {
            return try ObjectStore.decode(key: key, value: value)
        } catch {
            log.warning("skipping \(error)")
            return nil
        }
    }
}


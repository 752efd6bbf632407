import Foundation
import StraitModel
import StraitStore

/// Leases in Strait's store under `options.layout` (flannel's etcd subnet manager): the network
/// config at `<prefix>/config` (written from the flags when absent), one key per node under
/// `<prefix>/subnets/` bound to a store lease with a TTL (`SubnetLeaser`), watched for the others.
public actor StoreLeaseSource: LeaseSource {
    public let options: OverlayOptions
    private var store: (any Store)?
    private var config: NetworkConfig?

    public init(options: OverlayOptions) {
        self.options = options
    }

    public nonisolated var configOrigin: String { options.layout.config }
    private nonisolated var layout: KeyLayout { options.layout }

    public func start() async throws -> NetworkConfig {
        let store = try await opened()
        let config = try await NetworkConfigSource(store: store, options: options).load()
        self.config = config
        return config
    }

    private func opened() async throws -> any Store {
        if let store { return store }
        let store = try await openStore(url: options.store, tls: options.tls)
        self.store = store
        return store
    }

    public func previousLease(publicIP: IPv4Address) async throws -> SubnetLease? {
        let (items, _) = try await opened().list(prefix: layout.subnets)
        return items.compactMap { SubnetLease(key: $0.key, value: $0.value) }.first { $0.publicIP == publicIP }
    }

    private func leaser(_ template: SubnetLease) throws -> SubnetLeaser {
        guard let store, let config else { throw OverlayError(.lease, "the store source was not started") }
        return SubnetLeaser(store: store, config: config, template: template, ttl: options.leaseTTL, layout: layout)
    }

    public func acquire(_ template: SubnetLease, preferring previous: IPv4CIDR?) async throws -> HeldLease {
        try await leaser(template).acquire(preferring: previous)
    }

    public func renew(_ held: HeldLease) async throws {
        try await leaser(held.lease).renew(held)
    }

    /// List, then watch from the list's revision; list again after `.compacted` or a broken stream.
    public nonisolated func events() -> AsyncStream<LeaseEvent> {
        let (stream, continuation) = AsyncStream<LeaseEvent>.makeStream()
        let task = Task {
            var delay = Duration.milliseconds(200)
            while !Task.isCancelled {
                do {
                    let store = try await self.opened()
                    let (items, revision) = try await store.list(prefix: layout.subnets)
                    var leases: [SubnetLease] = []
                    for item in items {
                        if let lease = SubnetLease(key: item.key, value: item.value) {
                            leases.append(lease)
                        } else if item.key.hasPrefix(layout.subnets) {
                            overlayLog.warning("ignoring malformed lease \(item.key)")
                        }
                    }
                    continuation.yield(.listed(leases))
                    delay = .milliseconds(200)
                    for try await event in store.watch(prefix: layout.subnets, afterRevision: revision) {
                        switch event {
                        case .put(let item):
                            if let lease = SubnetLease(key: item.key, value: item.value) { continuation.yield(.set(lease)) }
                        case .delete(let key, _, _):
                            if let subnet = OverlayKeys.subnet(fromKey: key) { continuation.yield(.removed(subnet)) }
                        case .compacted(let at):
                            overlayLog.info("watch history compacted at revision \(at); listing again")
                        }
                        if case .compacted = event { break }
                    }
                } catch {
                    if Task.isCancelled { break }
                    overlayLog.warning("lease watch: \(error); listing again in \(delay)")
                    try? await Task.sleep(for: delay)
                    delay = min(delay * 2, .seconds(5))
                }
            }
            continuation.finish()
        }
        continuation.onTermination = { _ in task.cancel() }
        return stream
    }

    /// The store has no per-node status to set.
    public func nodeProgrammed() async {}

    public func close() async {
        await store?.close()
        store = nil
    }
}

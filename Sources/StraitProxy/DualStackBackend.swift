/// One backend per IP family behind one sync, as kube-proxy's metaproxier joins its IPv4 and IPv6
/// proxiers: each family's backend programs that family's plans in its own transaction.
public struct DualStackBackend: ProxyBackend {
    /// The families' backends, IPv4 first; all of one mode.
    public let backends: [any ProxyBackend]

    public init(_ backends: [any ProxyBackend]) {
        precondition(!backends.isEmpty, "a dual-stack backend needs a backend per family")
        self.backends = backends
    }

    public var mode: ProxyMode { backends[0].mode }

    /// Syncs every family, also after one failed (so one family's trouble does not freeze the
    /// other's rules); throws the first failure, so the next sync is a full one for all.
    public func sync(from old: ServiceTable?, to new: ServiceTable) async throws {
        var failure: (any Error)?
        for backend in backends {
            do { try await backend.sync(from: old, to: new) } catch { failure = failure ?? error }
        }
        if let failure { throw failure }
    }

    public func cleanup() async throws {
        var failure: (any Error)?
        for backend in backends {
            do { try await backend.cleanup() } catch { failure = failure ?? error }
        }
        if let failure { throw failure }
    }
}

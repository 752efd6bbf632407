import Foundation

/// A revisioned key-value store: the shared state of every Strait process.
///
/// The model is etcd's v3 model, so both implementations behave alike:
/// - every write bumps one store-wide `revision` counter; a key remembers the
///   revision that created it (`createRevision`) and that last changed it (`modRevision`);
/// - compare-and-swap is done on `modRevision` (`update(_:value:ifRevision:)`), and
///   create-if-absent (`create`) fails with `.alreadyExists`;
/// - a key may be bound to a lease; when the lease expires or is revoked its keys are
///   deleted, and watchers see those deletes;
/// - `watch` delivers every change under a prefix after a given revision, in revision
///   order, exactly once; if the history it needs was compacted it yields `.compacted`
///   and ends, and the caller lists again.
///
/// The usual pattern is list, then watch after the list's revision:
/// ```swift
/// let (items, revision) = try await store.list(prefix: "/strait/services/")
/// for try await event in store.watch(prefix: "/strait/services/", afterRevision: revision) { … }
/// ```
public protocol Store: Sendable {
    /// The key's current value, or `nil` when absent.
    func get(_ key: String) async throws -> KeyValue?

    /// Every key starting with `prefix` (all keys for `""`), sorted by key, and the store
    /// revision the listing reflects.
    func list(prefix: String) async throws -> (items: [KeyValue], revision: Revision)

    /// Creates `key` only if absent; throws `StoreError` `.alreadyExists` otherwise.
    /// Returns the revision of the write.
    @discardableResult
    func create(_ key: String, value: Data, lease: LeaseID?) async throws -> Revision

    /// Replaces `key` only if its `modRevision` is still `ifRevision`; throws
    /// `.revisionMismatch` if it changed and `.notFound` if it is gone.
    @discardableResult
    func update(_ key: String, value: Data, ifRevision: Revision, lease: LeaseID?) async throws -> Revision

    /// Writes `key` unconditionally.
    @discardableResult
    func put(_ key: String, value: Data, lease: LeaseID?) async throws -> Revision

    /// Deletes `key`; with `ifRevision` only if its `modRevision` still matches
    /// (`.revisionMismatch` otherwise). Returns whether a key was deleted.
    @discardableResult
    func delete(_ key: String, ifRevision: Revision?) async throws -> Bool

    /// Grants a lease that expires `ttl` seconds from now unless kept alive.
    /// etcd may round very short TTLs up (its minimum is about 2 s).
    func grantLease(ttl: Int64) async throws -> LeaseID

    /// Restarts the lease's TTL; returns the TTL in seconds. Throws `.leaseNotFound`
    /// when the lease already expired or was revoked.
    @discardableResult
    func keepAlive(_ lease: LeaseID) async throws -> Int64

    /// Revokes the lease and deletes every key bound to it.
    func revokeLease(_ lease: LeaseID) async throws

    /// Streams every change under `prefix` with a revision greater than `afterRevision`
    /// (from now when `nil`), in revision order, exactly once. Ends with `.compacted`
    /// when the needed history is gone. Cancel the consuming task to stop.
    func watch(prefix: String, afterRevision: Revision?) -> AsyncThrowingStream<WatchEvent, Error>

    /// Drops history at and before `revision`: watches that start there report `.compacted`.
    func compact(upTo revision: Revision) async throws

    /// Releases connections. The store is unusable afterwards.
    func close() async
}

extension Store {
    @discardableResult
    public func create(_ key: String, value: Data) async throws -> Revision {
        try await create(key, value: value, lease: nil)
    }

    @discardableResult
    public func update(_ key: String, value: Data, ifRevision: Revision) async throws -> Revision {
        try await update(key, value: value, ifRevision: ifRevision, lease: nil)
    }

    @discardableResult
    public func put(_ key: String, value: Data) async throws -> Revision {
        try await put(key, value: value, lease: nil)
    }

    @discardableResult
    public func delete(_ key: String) async throws -> Bool {
        try await delete(key, ifRevision: nil)
    }
}

/// A store-wide revision number; grows by at least one with every write.
public typealias Revision = Int64

/// A lease identifier, as etcd numbers them (never 0).
public struct LeaseID: Hashable, Sendable, CustomStringConvertible {
    public let rawValue: Int64
    public init(_ rawValue: Int64) { self.rawValue = rawValue }
    public var description: String { String(rawValue) }
}

/// One key with its value and its history counters.
public struct KeyValue: Hashable, Sendable {
    public var key: String
    public var value: Data
    /// Revision of the write that created the key (it restarts after a delete).
    public var createRevision: Revision
    /// Revision of the last write to the key: the token for `update(_:value:ifRevision:)`.
    public var modRevision: Revision
    /// Writes since creation, starting at 1.
    public var version: Int64
    public var lease: LeaseID?

    public init(
        key: String, value: Data, createRevision: Revision, modRevision: Revision, version: Int64,
        lease: LeaseID? = nil
    ) {
        self.key = key
        self.value = value
        self.createRevision = createRevision
        self.modRevision = modRevision
        self.version = version
        self.lease = lease
    }
}

/// One change seen by a watch.
public enum WatchEvent: Hashable, Sendable {
    /// The key was created or changed; `kv.modRevision` is the event's revision.
    case put(KeyValue)
    /// The key was deleted at `revision`; `previous` is its last value when known.
    case delete(key: String, revision: Revision, previous: KeyValue?)
    /// History after the requested revision is gone (compacted up to `revision`):
    /// list again and watch from the new listing. The stream ends after this event.
    case compacted(revision: Revision)

    public var revision: Revision {
        switch self {
        case .put(let kv): kv.modRevision
        case .delete(_, let revision, _): revision
        case .compacted(let revision): revision
        }
    }

    /// The key the event is about; `nil` for `.compacted`.
    public var key: String? {
        switch self {
        case .put(let kv): kv.key
        case .delete(let key, _, _): key
        case .compacted: nil
        }
    }
}

/// The exclusive end of the key range holding every key that starts with `prefix`
/// (etcd's `range_end`): the prefix with its last byte below 0xff incremented, or
/// `nil` for "no end" (empty prefix or all 0xff).
func prefixRangeEnd(_ prefix: [UInt8]) -> [UInt8]? {
    var end = prefix
    while let last = end.last {
        if last < 0xff {
            end[end.count - 1] = last + 1
            return end
        }
        end.removeLast()
    }
    return nil
}

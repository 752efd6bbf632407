import Foundation

/// The store for many machines: an etcd v3 cluster, spoken to through etcd's JSON gateway
/// over HTTP/1.1 (see `EtcdGateway` for why not gRPC).
///
/// Mapping onto the v3 API:
/// - `get`/`list` → `/v3/kv/range` (a prefix is `key`..`range_end`);
/// - `create` → `/v3/kv/txn` comparing `create_revision == 0`; `update` and conditional
///   `delete` → `/v3/kv/txn` comparing `mod_revision`;
/// - leases → `/v3/lease/grant`, `/v3/lease/keepalive`, `/v3/lease/revoke`;
/// - `watch` → the streaming `/v3/watch`; after a broken connection (an etcd restart, a
///   fail-over) it reconnects and resumes at the last delivered revision + 1, so no event
///   is lost or repeated; a `compact_revision` answer becomes `.compacted`.
public final class EtcdStore: Store {
    let gateway: EtcdGateway

    /// Connects lazily: nothing is dialled until the first call.
    public init(endpoints: [EtcdEndpoint], tls: EtcdTLSFiles? = nil) throws {
        guard !endpoints.isEmpty else {
            throw StoreError(.invalidURL, operation: "open", detail: "no etcd endpoints")
        }
        gateway = try EtcdGateway(endpoints: endpoints, tls: tls)
    }

    public var endpoints: [EtcdEndpoint] { gateway.endpoints }

    // MARK: Reads

    public func get(_ key: String) async throws -> KeyValue? {
        let data = try await gateway.call("/v3/kv/range", ["key": key.etcdBase64], operation: "get", key: key)
        let response = try EtcdJSON.decode(EtcdJSON.RangeResponse.self, data, operation: "get", key: key)
        return response.kvs?.first?.keyValue
    }

    public func list(prefix: String) async throws -> (items: [KeyValue], revision: Revision) {
        let data = try await gateway.call("/v3/kv/range", Self.rangeBody(prefix), operation: "list", key: prefix)
        let response = try EtcdJSON.decode(EtcdJSON.RangeResponse.self, data, operation: "list", key: prefix)
        return ((response.kvs ?? []).map(\.keyValue), response.header?.revision?.value ?? 0)
    }

    // MARK: Writes

    @discardableResult
    public func create(_ key: String, value: Data, lease: LeaseID?) async throws -> Revision {
        let compare: [String: Any] = [
            "key": key.etcdBase64, "target": "CREATE", "result": "EQUAL", "create_revision": "0",
        ]
        let response = try await txn(key, compare, success: ["request_put": putBody(key, value, lease)], "create")
        guard response.succeeded == true else {
            throw StoreError(.alreadyExists, operation: "create", key: key)
        }
        return response.header?.revision?.value ?? 0
    }

    @discardableResult
    public func update(_ key: String, value: Data, ifRevision: Revision, lease: LeaseID?) async throws -> Revision {
        let compare: [String: Any] = [
            "key": key.etcdBase64, "target": "MOD", "result": "EQUAL", "mod_revision": String(ifRevision),
        ]
        let response = try await txn(key, compare, success: ["request_put": putBody(key, value, lease)], "update")
        guard response.succeeded == true else { throw Self.casFailure(response, ifRevision, "update", key) }
        return response.header?.revision?.value ?? 0
    }

    @discardableResult
    public func put(_ key: String, value: Data, lease: LeaseID?) async throws -> Revision {
        let data = try await gateway.call("/v3/kv/put", putBody(key, value, lease), operation: "put", key: key)
        let response = try EtcdJSON.decode(EtcdJSON.PutResponse.self, data, operation: "put", key: key)
        return response.header?.revision?.value ?? 0
    }

    @discardableResult
    public func delete(_ key: String, ifRevision: Revision?) async throws -> Bool {
        guard let ifRevision else {
            let data = try await gateway.call(
                "/v3/kv/deleterange", ["key": key.etcdBase64], operation: "delete", key: key)
            let response = try EtcdJSON.decode(EtcdJSON.DeleteRangeResponse.self, data, operation: "delete", key: key)
            return (response.deleted?.value ?? 0) > 0
        }
        let compare: [String: Any] = [
            "key": key.etcdBase64, "target": "MOD", "result": "EQUAL", "mod_revision": String(ifRevision),
        ]
        let response = try await txn(
            key, compare, success: ["request_delete_range": ["key": key.etcdBase64]], "delete")
        guard response.succeeded == true else { throw Self.casFailure(response, ifRevision, "delete", key) }
        return true
    }

    // MARK: Leases

    public func grantLease(ttl: Int64) async throws -> LeaseID {
        let data = try await gateway.call("/v3/lease/grant", ["TTL": String(ttl)], operation: "grant lease")
        let response = try EtcdJSON.decode(EtcdJSON.LeaseGrantResponse.self, data, operation: "grant lease", key: nil)
        guard let id = response.ID?.value, id != 0 else {
            throw StoreError(.backend, operation: "grant lease", detail: response.error ?? "no lease ID in answer")
        }
        return LeaseID(id)
    }

    @discardableResult
    public func keepAlive(_ lease: LeaseID) async throws -> Int64 {
        // The gateway runs the bidirectional LeaseKeepAlive stream for one request: one
        // JSON object in, `{"result": …}` out. An expired lease answers with TTL 0. A member
        // without a leader (a cluster that lost its quorum, or is starting) answers
        // `{"error": {"grpc_code": 14, "message": "etcdserver: no leader"}}`: etcd is unavailable,
        // the lease is not lost.
        let data = try await gateway.call(
            "/v3/lease/keepalive", ["ID": String(lease.rawValue)], operation: "keep-alive lease")
        let message = try EtcdJSON.decode(
            EtcdJSON.StreamMessage<EtcdJSON.LeaseKeepAliveResponse>.self,
            Self.firstLine(data), operation: "keep-alive lease", key: nil)
        if let error = message.error {
            throw StoreError(.unavailable, operation: "keep-alive lease", detail: "lease \(lease): \(error)")
        }
        guard let ttl = message.result?.TTL?.value, ttl > 0 else {
            throw StoreError(.leaseNotFound, operation: "keep-alive lease", detail: "lease \(lease)")
        }
        return ttl
    }

    public func revokeLease(_ lease: LeaseID) async throws {
        _ = try await gateway.call("/v3/lease/revoke", ["ID": String(lease.rawValue)], operation: "revoke lease")
    }

    // MARK: Compaction

    public func compact(upTo revision: Revision) async throws {
        _ = try await gateway.call(
            "/v3/kv/compaction", ["revision": String(revision), "physical": true], operation: "compact")
    }

    public func close() async {}

    // MARK: Watch

    public func watch(prefix: String, afterRevision: Revision?) -> AsyncThrowingStream<WatchEvent, Error> {
        let (stream, continuation) = AsyncThrowingStream<WatchEvent, Error>.makeStream()
        let task = Task { [gateway] in
            // The next revision to ask for; `nil` until the first watch is created "from now".
            var next: Revision? = afterRevision.map { $0 + 1 }
            var backoff = Duration.milliseconds(50)
            while !Task.isCancelled {
                var request = Self.rangeBody(prefix)
                request["prev_kv"] = true
                if let next { request["start_revision"] = String(next) }
                do {
                    var finished = false
                    let body: [String: Any] = ["create_request": request]
                    try await gateway.stream("/v3/watch", body, operation: "watch", key: prefix) { line in
                        let message = try EtcdJSON.decode(
                            EtcdJSON.StreamMessage<EtcdJSON.WatchResponse>.self, line, operation: "watch", key: prefix)
                        if let error = message.error {
                            // The gateway lost its own stream to etcd (leader change, shutdown):
                            // reconnect and resume like after a broken connection.
                            throw StoreError(.unavailable, operation: "watch", key: prefix, detail: "\(error)")
                        }
                        guard let response = message.result else { return true }
                        backoff = .milliseconds(50)
                        if let compacted = response.compact_revision?.value, compacted > 0 {
                            continuation.yield(.compacted(revision: compacted))
                            finished = true
                            return false
                        }
                        if response.canceled == true {
                            throw StoreError(
                                .backend, operation: "watch", key: prefix,
                                detail: "canceled by etcd: \(response.cancel_reason ?? "no reason given")")
                        }
                        if response.created == true, next == nil, let revision = response.header?.revision?.value {
                            next = revision + 1
                        }
                        var last: Revision?
                        for event in response.events ?? [] {
                            guard let watchEvent = Self.watchEvent(event) else { continue }
                            // Skip what an earlier connection already delivered.
                            if let next, watchEvent.revision < next { continue }
                            continuation.yield(watchEvent)
                            last = watchEvent.revision
                        }
                        if let last { next = last + 1 }
                        return true
                    }
                    if finished {
                        continuation.finish()
                        return
                    }
                } catch let error as StoreError where error.code == .unavailable {
                    // Connection refused or broken: etcd restarting, or fail-over. Retry.
                } catch is CancellationError {
                    break
                } catch {
                    continuation.finish(throwing: error)
                    return
                }
                do {
                    try await Task.sleep(for: backoff)
                } catch {
                    break
                }
                backoff = min(backoff * 2, .seconds(1))
            }
            continuation.finish()
        }
        continuation.onTermination = { _ in task.cancel() }
        return stream
    }

    // MARK: Helpers

    private static func watchEvent(_ event: EtcdJSON.WatchResponse.Event) -> WatchEvent? {
        guard let kv = event.kv?.keyValue else { return nil }
        if event.type == "DELETE" {
            return .delete(key: kv.key, revision: kv.modRevision, previous: event.prev_kv?.keyValue)
        }
        return .put(kv)
    }

    private func putBody(_ key: String, _ value: Data, _ lease: LeaseID?) -> [String: Any] {
        var body: [String: Any] = ["key": key.etcdBase64, "value": value.etcdBase64]
        if let lease { body["lease"] = String(lease.rawValue) }
        return body
    }

    /// Runs a one-compare transaction whose failure branch reads the key back.
    private func txn(
        _ key: String, _ compare: [String: Any], success: [String: Any], _ operation: String
    ) async throws -> EtcdJSON.TxnResponse {
        let body: [String: Any] = [
            "compare": [compare], "success": [success],
            "failure": [["request_range": ["key": key.etcdBase64]]],
        ]
        let data = try await gateway.call("/v3/kv/txn", body, operation: operation, key: key)
        return try EtcdJSON.decode(EtcdJSON.TxnResponse.self, data, operation: operation, key: key)
    }

    private static func casFailure(
        _ response: EtcdJSON.TxnResponse, _ expected: Revision, _ operation: String, _ key: String
    ) -> StoreError {
        let current = response.responses?.first?.response_range?.kvs?.first
        guard let current else {
            if operation == "update" { return StoreError(.notFound, operation: operation, key: key) }
            return StoreError(.revisionMismatch, operation: operation, key: key, detail: "key is absent")
        }
        return StoreError(
            .revisionMismatch, operation: operation, key: key,
            detail: "expected revision \(expected), found \(current.mod_revision?.value ?? 0)")
    }

    /// `key`/`range_end` selecting every key under `prefix` (all keys for `""`).
    static func rangeBody(_ prefix: String) -> [String: Any] {
        let bytes = Array(prefix.utf8)
        if bytes.isEmpty {
            // key "\0" with range_end "\0" is etcd's "every key".
            return ["key": Data([0]).etcdBase64, "range_end": Data([0]).etcdBase64]
        }
        return [
            "key": Data(bytes).etcdBase64,
            "range_end": Data(prefixRangeEnd(bytes) ?? [0]).etcdBase64,
        ]
    }

    private static func firstLine(_ data: Data) -> Data {
        guard let newline = data.firstIndex(of: UInt8(ascii: "\n")) else { return data }
        return Data(data[data.startIndex..<newline])
    }
}

import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// The embedded store: one SQLite file that several processes on one machine share.
///
/// - Writes run in `BEGIN IMMEDIATE` transactions in WAL mode, so processes serialize on
///   the write lock (waiting up to `busy_timeout`) while readers never block.
/// - Every write bumps the `meta.revision` counter and appends to the `events` log. Watchers
///   sleep until the database file changes (`DatabaseChangeSignal`: inotify, and a touch of
///   the file after each commit that changed keys), then read the log, so a change reaches a
///   watcher in any process within milliseconds and idle watchers cost no CPU. Without inotify
///   they poll.
/// - Leases live in `leases` with a wall-clock `expires_at`; whichever process touches the
///   store (any write, read or watcher read) revokes expired leases and deletes their keys,
///   which produces ordinary delete events. A watcher also wakes when the next lease is due.
/// - The log keeps the last `retainedEvents` events; older ones are compacted and a watch
///   that needs them gets `.compacted`.
public final class SQLiteStore: Store {
    /// The default path of the embedded store.
    public static let defaultPath = "/var/lib/strait/store.db"

    /// How watchers learn that the store changed.
    public enum WatchWake: Sendable {
        /// Sleep until the database file changes, and read anyway after `recheck` without one
        /// (a backstop: a missed file event then costs latency, never an event). Falls back to
        /// `.poll(every: .milliseconds(10))` when inotify is unavailable.
        case fileEvents(recheck: Duration)
        /// Read the store every `interval`, changed or not.
        case poll(every: Duration)
    }

    let connection: SQLiteConnection
    let retainedEvents: Int64
    let wake: WatchWake
    /// Present when watchers sleep on file events.
    let changes: DatabaseChangeSignal?

    /// Opens (creating if needed) the store at `path`; its directory must exist.
    ///
    /// An existing file that is empty, truncated or corrupt is refused with its name and left as it
    /// is (nothing is written before the checks pass): the operator restores or removes it.
    public init(
        path: String, retainedEvents: Int64 = 10_000, wake: WatchWake = .fileEvents(recheck: .seconds(1))
    ) async throws {
        if access(path, F_OK) != 0 && errno == ENOENT {
            try await Self.createWhole(path)
        } else if let problem = SQLiteFileCheck.problem(path) {
            throw StoreError(.corrupt, operation: "open", detail: "\(path) \(problem)")
        }
        self.connection = try SQLiteConnection(path: path)
        self.retainedEvents = retainedEvents
        if case .fileEvents = wake {
            let signal = DatabaseChangeSignal(databasePath: path)
            self.changes = signal.isWatching ? signal : nil
            self.wake = signal.isWatching ? wake : .poll(every: .milliseconds(10))
        } else {
            self.changes = nil
            self.wake = wake
        }
        do {
            try await connection.run("open") { db in
                // journal_mode needs the database lock; busy_timeout makes racing openers wait.
                try db.query("PRAGMA journal_mode=WAL")
                try db.execute("PRAGMA synchronous=NORMAL")
                // Damage inside the pages is found before the first write could spread it.
                let check = try db.query("PRAGMA quick_check(3)").compactMap { $0.first?.bytes }
                    .map { String(decoding: $0, as: UTF8.self) }
                guard check == ["ok"] else {
                    throw StoreError(.corrupt, operation: "open",
                                     detail: "\(path) is corrupt: \(check.joined(separator: "; "))")
                }
                try db.writeTransaction {
                    try db.execute(Self.schema)
                }
            }
        } catch var error as StoreError {
            await connection.close()
            if error.detail?.hasPrefix(path) != true {
                error.detail = "\(path): \(error.detail ?? "")"
            }
            throw error
        }
    }

    /// A new store appears whole: made under a temporary name and linked into place. A link never
    /// replaces a file, so of two processes creating the store at once one wins and the other opens
    /// its file; nobody sees a half-made store, and an empty store file is always damage.
    /// Equivalent: `sqlite3 store.db.new < schema.sql && ln store.db.new store.db && rm store.db.new`.
    private static func createWhole(_ path: String) async throws {
        let temporary = "\(path).new.\(getpid()).\(UInt32.random(in: 0...UInt32.max))"
        let connection = try SQLiteConnection(path: temporary)
        defer { unlink(temporary) }
        do {
            try await connection.run("create", key: nil) { db in
                try db.query("PRAGMA journal_mode=WAL")
                try db.writeTransaction {
                    try db.execute(Self.schema)
                }
            }
        } catch {
            await connection.close()
            throw error
        }
        await connection.close()
        if link(temporary, path) != 0 && errno != EEXIST {
            throw StoreError(.backend, operation: "create", detail: "\(path): \(String(cString: strerror(errno)))")
        }
    }

    static let schema = """
        CREATE TABLE IF NOT EXISTS meta (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            revision INTEGER NOT NULL,
            compacted INTEGER NOT NULL
        );
        INSERT OR IGNORE INTO meta (id, revision, compacted) VALUES (1, 1, 0);
        CREATE TABLE IF NOT EXISTS kv (
            key BLOB PRIMARY KEY,
            value BLOB NOT NULL,
            create_rev INTEGER NOT NULL,
            mod_rev INTEGER NOT NULL,
            version INTEGER NOT NULL,
            lease INTEGER
        ) WITHOUT ROWID;
        CREATE INDEX IF NOT EXISTS kv_lease ON kv (lease) WHERE lease IS NOT NULL;
        -- type 0 = put (value, create_rev, version, lease of the new value),
        -- type 1 = delete (value, create_rev, version, lease and prev_mod_rev of the old value).
        CREATE TABLE IF NOT EXISTS events (
            rev INTEGER PRIMARY KEY,
            key BLOB NOT NULL,
            type INTEGER NOT NULL,
            value BLOB,
            create_rev INTEGER,
            version INTEGER,
            lease INTEGER,
            prev_mod_rev INTEGER
        );
        CREATE TABLE IF NOT EXISTS leases (
            id INTEGER PRIMARY KEY,
            ttl INTEGER NOT NULL,
            expires_at INTEGER NOT NULL
        );
        CREATE INDEX IF NOT EXISTS leases_expiry ON leases (expires_at);
        """

    // MARK: Reads

    public func get(_ key: String) async throws -> KeyValue? {
        try await connection.run("get", key: key) { db in
            try self.reapIfDue(db)
            let rows = try db.query(
                "SELECT key, value, create_rev, mod_rev, version, lease FROM kv WHERE key = ?",
                [.blob(Array(key.utf8))])
            return rows.first.map(Self.keyValue)
        }
    }

    public func list(prefix: String) async throws -> (items: [KeyValue], revision: Revision) {
        try await connection.run("list", key: prefix) { db in
            try self.reapIfDue(db)
            return try db.readTransaction {
                let (condition, bindings) = Self.prefixCondition(prefix)
                let rows = try db.query(
                    "SELECT key, value, create_rev, mod_rev, version, lease FROM kv WHERE \(condition) ORDER BY key",
                    bindings)
                return (rows.map(Self.keyValue), try Self.meta(db).revision)
            }
        }
    }

    // MARK: Writes

    @discardableResult
    public func create(_ key: String, value: Data, lease: LeaseID?) async throws -> Revision {
        try await write("create", key: key) { db, now in
            if try Self.current(db, key) != nil {
                throw StoreError(.alreadyExists, operation: "create", key: key)
            }
            try Self.checkLease(db, lease, now: now, operation: "create", key: key)
            return try self.putRow(db, key: key, value: value, lease: lease, previous: nil)
        }
    }

    @discardableResult
    public func update(_ key: String, value: Data, ifRevision: Revision, lease: LeaseID?) async throws -> Revision {
        try await write("update", key: key) { db, now in
            guard let previous = try Self.current(db, key) else {
                throw StoreError(.notFound, operation: "update", key: key)
            }
            guard previous.modRevision == ifRevision else {
                throw StoreError(
                    .revisionMismatch, operation: "update", key: key,
                    detail: "expected revision \(ifRevision), found \(previous.modRevision)")
            }
            try Self.checkLease(db, lease, now: now, operation: "update", key: key)
            return try self.putRow(db, key: key, value: value, lease: lease, previous: previous)
        }
    }

    @discardableResult
    public func put(_ key: String, value: Data, lease: LeaseID?) async throws -> Revision {
        try await write("put", key: key) { db, now in
            try Self.checkLease(db, lease, now: now, operation: "put", key: key)
            return try self.putRow(db, key: key, value: value, lease: lease, previous: try Self.current(db, key))
        }
    }

    @discardableResult
    public func delete(_ key: String, ifRevision: Revision?) async throws -> Bool {
        try await write("delete", key: key) { db, _ in
            guard let previous = try Self.current(db, key) else {
                if ifRevision != nil {
                    throw StoreError(.revisionMismatch, operation: "delete", key: key, detail: "key is absent")
                }
                return false
            }
            if let ifRevision, previous.modRevision != ifRevision {
                throw StoreError(
                    .revisionMismatch, operation: "delete", key: key,
                    detail: "expected revision \(ifRevision), found \(previous.modRevision)")
            }
            try self.deleteRow(db, previous)
            return true
        }
    }

    // MARK: Leases

    public func grantLease(ttl: Int64) async throws -> LeaseID {
        try await write("grant lease", key: nil) { db, now in
            while true {
                let id = Int64.random(in: 1...Int64.max)
                let existing = try db.query("SELECT 1 FROM leases WHERE id = ?", [.integer(id)])
                if !existing.isEmpty { continue }
                try db.query(
                    "INSERT INTO leases (id, ttl, expires_at) VALUES (?, ?, ?)",
                    [.integer(id), .integer(ttl), .integer(now + ttl * 1000)])
                return LeaseID(id)
            }
        }
    }

    @discardableResult
    public func keepAlive(_ lease: LeaseID) async throws -> Int64 {
        try await write("keep-alive lease", key: nil) { db, now in
            // Expired leases were reaped by `write` before this runs.
            let rows = try db.query("SELECT ttl FROM leases WHERE id = ?", [.integer(lease.rawValue)])
            guard let ttl = rows.first?[0].int64 else {
                throw StoreError(.leaseNotFound, operation: "keep-alive lease", detail: "lease \(lease)")
            }
            try db.query(
                "UPDATE leases SET expires_at = ? WHERE id = ?", [.integer(now + ttl * 1000), .integer(lease.rawValue)])
            return ttl
        }
    }

    public func revokeLease(_ lease: LeaseID) async throws {
        try await write("revoke lease", key: nil) { db, _ in
            let rows = try db.query("SELECT 1 FROM leases WHERE id = ?", [.integer(lease.rawValue)])
            guard !rows.isEmpty else {
                throw StoreError(.leaseNotFound, operation: "revoke lease", detail: "lease \(lease)")
            }
            try self.revoke(db, lease.rawValue)
        }
    }

    // MARK: Compaction

    public func compact(upTo revision: Revision) async throws {
        try await write("compact", key: nil) { db, _ in
            let meta = try Self.meta(db)
            guard revision <= meta.revision else {
                throw StoreError(
                    .backend, operation: "compact",
                    detail: "revision \(revision) is in the future (current \(meta.revision))")
            }
            guard revision > meta.compacted else {
                throw StoreError(
                    .compacted, operation: "compact", detail: "already compacted up to \(meta.compacted)")
            }
            try Self.compact(db, upTo: revision)
        }
    }

    public func close() async {
        await connection.close()
        changes?.stop()
    }

    // MARK: Watch

    public func watch(prefix: String, afterRevision: Revision?) -> AsyncThrowingStream<WatchEvent, Error> {
        let (stream, continuation) = AsyncThrowingStream<WatchEvent, Error>.makeStream()
        let task = Task { [connection, changes, wake] in
            do {
                var last = afterRevision
                while !Task.isCancelled {
                    let after = last
                    // Read before the query: a change committed after it moves the generation.
                    let generation = changes?.generation ?? 0
                    let (batch, nextExpiry) = try await connection.run("watch", key: prefix) { db in
                        try self.reapIfDue(db)
                        let batch = try db.readTransaction { try Self.poll(db, prefix: prefix, after: after) }
                        return (batch, try Self.nextLeaseExpiry(db))
                    }
                    switch batch {
                    case .compacted(let revision):
                        continuation.yield(.compacted(revision: revision))
                        continuation.finish()
                        return
                    case .events(let events, let through):
                        for event in events { continuation.yield(event) }
                        last = through
                        // A full page means more is waiting: read on without sleeping.
                        if events.count == Self.pageSize { continue }
                    }
                    switch wake {
                    case .poll(let interval):
                        try await Task.sleep(for: interval)
                    case .fileEvents(let recheck):
                        await changes?.wait(after: generation, timeout: Self.idleTime(recheck, nextExpiry))
                    }
                }
                continuation.finish()
            } catch is CancellationError {
                continuation.finish()
            } catch {
                continuation.finish(throwing: error)
            }
        }
        continuation.onTermination = { _ in task.cancel() }
        return stream
    }

    /// How long an idle watcher sleeps: until `recheck`, or until just after the next lease is
    /// due, when the watcher's own read reaps it (nobody else may be writing).
    static func idleTime(_ recheck: Duration, _ nextExpiry: Int64?) -> Duration {
        guard let nextExpiry else { return recheck }
        let untilDue = Duration.milliseconds(max(0, nextExpiry - nowMilliseconds()) + 1)
        return min(recheck, untilDue)
    }

    /// The wall-clock millisecond at which the next lease expires, if any lease exists.
    static func nextLeaseExpiry(_ db: SQLiteDatabase) throws -> Int64? {
        try db.query("SELECT MIN(expires_at) FROM leases").first?[0].int64
    }

    static let pageSize = 1000

    enum PollResult: Sendable {
        case events([WatchEvent], through: Revision)
        case compacted(Revision)
    }

    /// Reads the events after `after` (from the current revision when `nil`) in one snapshot.
    static func poll(_ db: SQLiteDatabase, prefix: String, after: Revision?) throws -> PollResult {
        let meta = try meta(db)
        guard let after else { return .events([], through: meta.revision) }
        if after < meta.compacted { return .compacted(meta.revision) }
        if after >= meta.revision { return .events([], through: after) }
        let (condition, bindings) = prefixCondition(prefix)
        let rows = try db.query(
            """
            SELECT rev, key, type, value, create_rev, version, lease, prev_mod_rev FROM events
            WHERE rev > ? AND \(condition) ORDER BY rev LIMIT \(pageSize)
            """,
            [.integer(after)] + bindings)
        let events = rows.map { row -> WatchEvent in
            let revision = row[0].int64 ?? 0
            let key = String(decoding: row[1].bytes ?? [], as: UTF8.self)
            let value = Data(row[3].bytes ?? [])
            let lease = row[6].int64.map(LeaseID.init)
            if row[2].int64 == 1 {
                let previous = KeyValue(
                    key: key, value: value, createRevision: row[4].int64 ?? 0, modRevision: row[7].int64 ?? 0,
                    version: row[5].int64 ?? 0, lease: lease)
                return .delete(key: key, revision: revision, previous: previous)
            }
            return .put(
                KeyValue(
                    key: key, value: value, createRevision: row[4].int64 ?? 0, modRevision: revision,
                    version: row[5].int64 ?? 0, lease: lease))
        }
        let through = events.count == pageSize ? events[events.count - 1].revision : meta.revision
        return .events(events, through: through)
    }

    // MARK: Internals (run on the connection's queue)

    /// Runs a write in one `BEGIN IMMEDIATE` transaction after reaping expired leases. Only a commit
    /// that moved the revision (a put or delete, the events watchers read) is announced: granting or
    /// renewing a lease changes nothing a watch reports, and waking every watcher of the file for it
    /// costs each of them a read. A watcher learns such a lease's expiry at its next read (within its
    /// recheck) and reaps it from then on.
    private func write<T: Sendable>(
        _ operation: String, key: String?, _ body: @escaping @Sendable (SQLiteDatabase, Int64) throws -> T
    ) async throws -> T {
        try await connection.run(operation, key: key) { db in
            let (result, moved) = try db.writeTransaction {
                let now = Self.nowMilliseconds()
                let before = try Self.meta(db).revision
                try self.reapExpired(db, now: now)
                let result = try body(db, now)
                return (result, try Self.meta(db).revision != before)
            }
            if moved { self.announceCommit() }
            return result
        }
    }

    /// Tells every watcher of this file, in any process, that a commit is visible: touching the
    /// file raises `IN_ATTRIB` for their `DatabaseChangeSignal`. Equivalent: `touch store.db`.
    private func announceCommit() {
        #if canImport(Glibc)
        _ = utimensat(AT_FDCWD, connection.path, nil, 0)
        #endif
    }

    /// Reaps expired leases if any are due; a cheap indexed read when none are.
    func reapIfDue(_ db: SQLiteDatabase) throws {
        let now = Self.nowMilliseconds()
        let due = try db.query("SELECT 1 FROM leases WHERE expires_at <= ? LIMIT 1", [.integer(now)])
        guard !due.isEmpty else { return }
        try db.writeTransaction { try reapExpired(db, now: now) }
        announceCommit()
    }

    private func reapExpired(_ db: SQLiteDatabase, now: Int64) throws {
        let expired = try db.query("SELECT id FROM leases WHERE expires_at <= ? ORDER BY id", [.integer(now)])
        for row in expired {
            if let id = row[0].int64 { try revoke(db, id) }
        }
    }

    private func revoke(_ db: SQLiteDatabase, _ lease: Int64) throws {
        let rows = try db.query(
            "SELECT key, value, create_rev, mod_rev, version, lease FROM kv WHERE lease = ? ORDER BY key",
            [.integer(lease)])
        for row in rows { try deleteRow(db, Self.keyValue(row)) }
        try db.query("DELETE FROM leases WHERE id = ?", [.integer(lease)])
    }

    private func putRow(
        _ db: SQLiteDatabase, key: String, value: Data, lease: LeaseID?, previous: KeyValue?
    ) throws -> Revision {
        let revision = try nextRevision(db)
        let createRevision = previous?.createRevision ?? revision
        let version = (previous?.version ?? 0) + 1
        let leaseValue: SQLValue = lease.map { .integer($0.rawValue) } ?? .null
        let keyBytes: SQLValue = .blob(Array(key.utf8))
        let valueBytes: SQLValue = .blob(Array(value))
        try db.query(
            "INSERT OR REPLACE INTO kv (key, value, create_rev, mod_rev, version, lease) VALUES (?, ?, ?, ?, ?, ?)",
            [keyBytes, valueBytes, .integer(createRevision), .integer(revision), .integer(version), leaseValue])
        try db.query(
            "INSERT INTO events (rev, key, type, value, create_rev, version, lease) VALUES (?, ?, 0, ?, ?, ?, ?)",
            [.integer(revision), keyBytes, valueBytes, .integer(createRevision), .integer(version), leaseValue])
        return revision
    }

    private func deleteRow(_ db: SQLiteDatabase, _ previous: KeyValue) throws {
        let revision = try nextRevision(db)
        let keyBytes: SQLValue = .blob(Array(previous.key.utf8))
        try db.query("DELETE FROM kv WHERE key = ?", [keyBytes])
        try db.query(
            """
            INSERT INTO events (rev, key, type, value, create_rev, version, lease, prev_mod_rev)
            VALUES (?, ?, 1, ?, ?, ?, ?, ?)
            """,
            [
                .integer(revision), keyBytes, .blob(Array(previous.value)), .integer(previous.createRevision),
                .integer(previous.version), previous.lease.map { .integer($0.rawValue) } ?? .null,
                .integer(previous.modRevision),
            ])
    }

    /// Bumps the revision; every `retainedEvents / 10` revisions, drops events older than
    /// the last `retainedEvents`.
    private func nextRevision(_ db: SQLiteDatabase) throws -> Revision {
        let rows = try db.query("UPDATE meta SET revision = revision + 1 WHERE id = 1 RETURNING revision")
        guard let revision = rows.first?[0].int64 else { throw SQLiteFailure(message: "meta row missing") }
        let step = max(retainedEvents / 10, 1)
        if revision % step == 0, revision > retainedEvents {
            let meta = try Self.meta(db)
            if revision - retainedEvents > meta.compacted {
                try Self.compact(db, upTo: revision - retainedEvents)
            }
        }
        return revision
    }

    private static func compact(_ db: SQLiteDatabase, upTo revision: Revision) throws {
        try db.query("DELETE FROM events WHERE rev <= ?", [.integer(revision)])
        try db.query("UPDATE meta SET compacted = ? WHERE id = 1", [.integer(revision)])
    }

    private static func meta(_ db: SQLiteDatabase) throws -> (revision: Revision, compacted: Revision) {
        let rows = try db.query("SELECT revision, compacted FROM meta WHERE id = 1")
        guard let row = rows.first, let revision = row[0].int64, let compacted = row[1].int64 else {
            throw SQLiteFailure(message: "meta row missing")
        }
        return (revision, compacted)
    }

    private static func current(_ db: SQLiteDatabase, _ key: String) throws -> KeyValue? {
        let rows = try db.query(
            "SELECT key, value, create_rev, mod_rev, version, lease FROM kv WHERE key = ?", [.blob(Array(key.utf8))])
        return rows.first.map(keyValue)
    }

    private static func checkLease(
        _ db: SQLiteDatabase, _ lease: LeaseID?, now: Int64, operation: String, key: String
    ) throws {
        guard let lease else { return }
        let rows = try db.query(
            "SELECT 1 FROM leases WHERE id = ? AND expires_at > ?", [.integer(lease.rawValue), .integer(now)])
        if rows.isEmpty {
            throw StoreError(.leaseNotFound, operation: operation, key: key, detail: "lease \(lease)")
        }
    }

    private static func keyValue(_ row: [SQLValue]) -> KeyValue {
        KeyValue(
            key: String(decoding: row[0].bytes ?? [], as: UTF8.self),
            value: Data(row[1].bytes ?? []),
            createRevision: row[2].int64 ?? 0,
            modRevision: row[3].int64 ?? 0,
            version: row[4].int64 ?? 0,
            lease: row[5].int64.map(LeaseID.init))
    }

    /// A `WHERE` clause selecting keys that start with `prefix`, as a byte range on `key`.
    private static func prefixCondition(_ prefix: String) -> (String, [SQLValue]) {
        let bytes = Array(prefix.utf8)
        if bytes.isEmpty { return ("1", []) }
        guard let end = prefixRangeEnd(bytes) else { return ("key >= ?", [.blob(bytes)]) }
        return ("key >= ? AND key < ?", [.blob(bytes), .blob(end)])
    }

    private static func nowMilliseconds() -> Int64 {
        Int64((Date().timeIntervalSince1970 * 1000).rounded())
    }
}

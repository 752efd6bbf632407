import CSQLite
import Dispatch
#if canImport(Glibc)
import Glibc
#endif

/// A value bound to or read from an SQLite statement.
enum SQLValue: Sendable, Hashable {
    case null
    case integer(Int64)
    case blob([UInt8])
    case text(String)

    var int64: Int64? {
        if case .integer(let value) = self { return value }
        return nil
    }

    var bytes: [UInt8]? {
        switch self {
        case .blob(let bytes): bytes
        case .text(let text): Array(text.utf8)
        default: nil
        }
    }
}

/// One SQLite connection. SQLite calls block (on disk, and on other processes' locks up
/// to `busy_timeout`), so they run on a private serial queue instead of the cooperative
/// pool; `run` hands the queue's `SQLiteDatabase` to a closure and awaits the result.
final class SQLiteConnection: @unchecked Sendable {
    // Touched only on `queue`.
    private var database: SQLiteDatabase?
    private let queue: DispatchQueue
    let path: String

    init(path: String, busyTimeoutMilliseconds: Int32 = 10_000) throws {
        self.path = path
        self.queue = DispatchQueue(label: "strait.store.sqlite")
        var handle: OpaquePointer?
        // SQLite would create the file 0644 (less the umask); its -wal and -shm files copy the mode.
        // A new store is created 0600 here instead; an existing file keeps the mode its operator gave it.
        let created = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        if created >= 0 { Glibc.close(created) }
        let flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX
        let status = sqlite3_open_v2(path, &handle, flags, nil)
        guard status == SQLITE_OK, let handle else {
            let message = handle.map { String(cString: sqlite3_errmsg($0)) } ?? "out of memory"
            sqlite3_close_v2(handle)
            throw StoreError(.backend, operation: "open", detail: "\(path): \(message)")
        }
        sqlite3_busy_timeout(handle, busyTimeoutMilliseconds)
        database = SQLiteDatabase(handle: handle)
    }

    /// Runs `body` on the connection's queue.
    func run<T: Sendable>(
        _ operation: String, key: String? = nil, _ body: @escaping @Sendable (SQLiteDatabase) throws -> T
    ) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            queue.async {
                guard let database = self.database else {
                    continuation.resume(throwing: StoreError(.closed, operation: operation, key: key))
                    return
                }
                do {
                    continuation.resume(returning: try body(database))
                } catch let error as StoreError {
                    continuation.resume(throwing: error)
                } catch let error as SQLiteFailure {
                    // A damaged file is named as such (SQLITE_CORRUPT, SQLITE_NOTADB), not as a passing failure.
                    let code: StoreError.Code = error.isDamage ? .corrupt : .backend
                    continuation.resume(
                        throwing: StoreError(code, operation: operation, key: key, detail: error.message))
                } catch {
                    continuation.resume(throwing: error)
                }
            }
        }
    }

    func close() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            queue.async {
                self.database?.close()
                self.database = nil
                continuation.resume()
            }
        }
    }

    deinit {
        database?.close()
    }
}

/// An SQLite error message with the statement that failed, and SQLite's primary result code.
struct SQLiteFailure: Error {
    var message: String
    var status: Int32 = SQLITE_ERROR

    /// The file itself is damaged (not a database, or malformed pages).
    var isDamage: Bool { status == SQLITE_CORRUPT || status == SQLITE_NOTADB }
}

/// The raw connection, used only on its `SQLiteConnection`'s queue. Prepared statements
/// are cached per SQL text.
final class SQLiteDatabase: @unchecked Sendable {
    private let handle: OpaquePointer
    private var statements: [String: OpaquePointer] = [:]

    init(handle: OpaquePointer) {
        self.handle = handle
    }

    func close() {
        for statement in statements.values { sqlite3_finalize(statement) }
        statements = [:]
        sqlite3_close_v2(handle)
    }

    /// Runs one or more statements that return no rows.
    func execute(_ sql: String) throws {
        var errorMessage: UnsafeMutablePointer<CChar>?
        let status = sqlite3_exec(handle, sql, nil, nil, &errorMessage)
        if status != SQLITE_OK {
            let message = errorMessage.map { String(cString: $0) } ?? "status \(status)"
            sqlite3_free(errorMessage)
            throw SQLiteFailure(message: "\(sql.prefix(60)): \(message)", status: status & 0xff)
        }
    }

    /// Runs one statement and returns its rows.
    @discardableResult
    func query(_ sql: String, _ bindings: [SQLValue] = []) throws -> [[SQLValue]] {
        let statement = try prepared(sql)
        defer {
            sqlite3_reset(statement)
            sqlite3_clear_bindings(statement)
        }
        for (index, value) in bindings.enumerated() {
            let position = Int32(index + 1)
            let status: Int32
            switch value {
            case .null:
                status = sqlite3_bind_null(statement, position)
            case .integer(let number):
                status = sqlite3_bind_int64(statement, position, number)
            case .blob(let bytes):
                status = bytes.withUnsafeBytes { raw in
                    // A zero-length blob needs a non-null pointer to be a blob, not NULL.
                    sqlite3_bind_blob(statement, position, raw.baseAddress ?? UnsafeRawPointer(bitPattern: 1),
                                      Int32(raw.count), sqliteTransient)
                }
            case .text(let text):
                status = sqlite3_bind_text(statement, position, text, -1, sqliteTransient)
            }
            guard status == SQLITE_OK else { throw failure(sql) }
        }
        var rows: [[SQLValue]] = []
        while true {
            let status = sqlite3_step(statement)
            if status == SQLITE_DONE { break }
            guard status == SQLITE_ROW else { throw failure(sql) }
            let columns = sqlite3_column_count(statement)
            var row: [SQLValue] = []
            row.reserveCapacity(Int(columns))
            for column in 0..<columns {
                switch sqlite3_column_type(statement, column) {
                case SQLITE_INTEGER:
                    row.append(.integer(sqlite3_column_int64(statement, column)))
                case SQLITE_NULL:
                    row.append(.null)
                case SQLITE_TEXT:
                    row.append(.text(String(cString: sqlite3_column_text(statement, column))))
                default:
                    let count = Int(sqlite3_column_bytes(statement, column))
                    if count == 0 {
                        row.append(.blob([]))
                    } else {
                        let pointer = sqlite3_column_blob(statement, column)!
                        row.append(.blob(Array(UnsafeRawBufferPointer(start: pointer, count: count))))
                    }
                }
            }
            rows.append(row)
        }
        return rows
    }

    /// Rows changed by the last INSERT, UPDATE or DELETE.
    var changes: Int { Int(sqlite3_changes(handle)) }

    /// Runs `body` in a `BEGIN IMMEDIATE` transaction: the write lock is taken up front,
    /// so writers in several processes queue on `busy_timeout` instead of failing on a
    /// read-to-write upgrade.
    func writeTransaction<T>(_ body: () throws -> T) throws -> T {
        try transaction(beginning: "BEGIN IMMEDIATE", body)
    }

    /// Runs `body` in a read transaction: one consistent snapshot across its queries.
    func readTransaction<T>(_ body: () throws -> T) throws -> T {
        try transaction(beginning: "BEGIN", body)
    }

    /// Runs `body` between `begin` and COMMIT, rolling back if it throws.
    private func transaction<T>(beginning begin: String, _ body: () throws -> T) throws -> T {
        try execute(begin)
        do {
            let result = try body()
            try execute("COMMIT")
            return result
        } catch {
            try? execute("ROLLBACK")
            throw error
        }
    }

    private func prepared(_ sql: String) throws -> OpaquePointer {
        if let statement = statements[sql] { return statement }
        var statement: OpaquePointer?
        guard sqlite3_prepare_v3(handle, sql, -1, UInt32(SQLITE_PREPARE_PERSISTENT), &statement, nil) == SQLITE_OK,
            let statement
        else {
            throw failure(sql)
        }
        statements[sql] = statement
        return statement
    }

    private func failure(_ sql: String) -> SQLiteFailure {
        SQLiteFailure(message: "\(sql.prefix(60)): \(String(cString: sqlite3_errmsg(handle)))",
                      status: sqlite3_errcode(handle) & 0xff)
    }
}

/// `SQLITE_TRANSIENT`: SQLite copies the bound bytes before the call returns.
private let sqliteTransient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)

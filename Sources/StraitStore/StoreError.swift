/// A failed store operation: what was attempted, on which key, and why.
public struct StoreError: Error, Hashable, Sendable, CustomStringConvertible {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        let name: String

        /// `create` found the key present.
        public static let alreadyExists = Code(name: "already exists")
        /// A compare-and-swap found a different `modRevision`.
        public static let revisionMismatch = Code(name: "revision mismatch")
        /// The key (for `update`) is absent.
        public static let notFound = Code(name: "not found")
        /// The lease expired, was revoked, or never existed.
        public static let leaseNotFound = Code(name: "lease not found")
        /// The requested revision was compacted away.
        public static let compacted = Code(name: "compacted")
        /// The store URL or its options are malformed.
        public static let invalidURL = Code(name: "invalid store URL")
        /// No endpoint could be reached or the connection broke.
        public static let unavailable = Code(name: "unavailable")
        /// The backend (SQLite, etcd) reported an error.
        public static let backend = Code(name: "backend error")
        /// The store's file is empty, truncated or corrupt (SQLite); it was left untouched.
        public static let corrupt = Code(name: "damaged store file")
        /// The store was closed.
        public static let closed = Code(name: "closed")

        public var description: String { name }
    }

    public var code: Code
    /// The operation attempted, e.g. `"create"`, `"watch"`, `"open"`.
    public var operation: String
    public var key: String?
    /// Backend detail: the SQLite message, etcd's error, the offending URL part.
    public var detail: String?

    public init(_ code: Code, operation: String, key: String? = nil, detail: String? = nil) {
        self.code = code
        self.operation = operation
        self.key = key
        self.detail = detail
    }

    public var description: String {
        var text = "store \(operation)"
        if let key { text += " \(key)" }
        text += ": \(code)"
        if let detail { text += ": \(detail)" }
        return text
    }
}

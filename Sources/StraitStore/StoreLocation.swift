import Foundation

/// Where the store lives, parsed from `--store`:
/// - `/var/lib/strait/store.db`, `./store.db` or `sqlite:///var/lib/strait/store.db` → SQLite;
/// - `etcd://host:2379[,host2:2379…]` → etcd, TLS when any of the TLS files is given.
public enum StoreLocation: Hashable, Sendable {
    case sqlite(path: String)
    case etcd(endpoints: [EtcdEndpoint], tls: EtcdTLSFiles?)

    /// The default store: the embedded SQLite file.
    public static let `default` = StoreLocation.sqlite(path: SQLiteStore.defaultPath)

    /// The store a command uses when none is named: `$STRAIT_STORE`, else `/var/lib/strait/store.db`.
    public static var defaultURL: String {
        ProcessInfo.processInfo.environment["STRAIT_STORE"].flatMap { $0.isEmpty ? nil : $0 } ?? SQLiteStore.defaultPath
    }

    public init(parsing url: String, tls: EtcdTLSFiles? = nil) throws {
        func invalid(_ why: String) -> StoreError {
            StoreError(.invalidURL, operation: "open", key: nil, detail: "\(why) in \"\(url)\"")
        }
        let tls = tls.flatMap { $0 == EtcdTLSFiles() ? nil : $0 }
        let text = url.trimmingCharacters(in: .whitespaces)
        guard !text.isEmpty else {
            throw invalid("empty store URL; expected a file path, sqlite:///path or etcd://host:port")
        }

        if let rest = text.dropPrefix("etcd://") {
            if let tls, (tls.certFile == nil) != (tls.keyFile == nil) {
                throw invalid("--etcd-certfile and --etcd-keyfile must be given together")
            }
            let parts = rest.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
            let endpoints = try parts.map { part -> EtcdEndpoint in
                let part = part.trimmingCharacters(in: .whitespaces)
                guard !part.isEmpty else { throw invalid("empty etcd endpoint") }
                guard let endpoint = Self.endpoint(part) else {
                    throw invalid("etcd endpoint \"\(part)\" is not host:port (port 1-65535, no path)")
                }
                return endpoint
            }
            self = .etcd(endpoints: endpoints, tls: tls)
            return
        }

        let path: String
        if let rest = text.dropPrefix("sqlite://") {
            guard rest.hasPrefix("/") else {
                throw invalid("sqlite URL needs an absolute path: sqlite:///path/to/store.db")
            }
            path = rest
        } else if let scheme = text.range(of: "://") {
            throw invalid("unknown scheme \"\(text[..<scheme.lowerBound])\"; use a file path, sqlite:// or etcd://")
        } else {
            path = text
        }
        guard !path.hasSuffix("/") else { throw invalid("store path is a directory; name the file") }
        guard tls == nil else { throw invalid("--etcd-cafile/--etcd-certfile/--etcd-keyfile apply only to etcd://") }
        self = .sqlite(path: path)
    }

    /// `host:port`, `[v6]:port`, or `host` (port 2379).
    private static func endpoint(_ text: String) -> EtcdEndpoint? {
        var host: Substring
        var portText: Substring?
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else { return nil }
            host = text[text.index(after: text.startIndex)..<close]
            let after = text[text.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":") else { return nil }
                portText = after.dropFirst()
            }
        } else {
            let pieces = text.split(separator: ":", omittingEmptySubsequences: false)
            guard pieces.count <= 2 else { return nil }
            host = pieces[0]
            portText = pieces.count == 2 ? pieces[1] : nil
        }
        guard !host.isEmpty, !host.contains("/"), !host.contains("@") else { return nil }
        var port = 2379
        if let portText {
            guard let number = Int(portText), (1...65535).contains(number) else { return nil }
            port = number
        }
        return EtcdEndpoint(host: String(host), port: port)
    }
}

/// Opens the store at `url` (see `StoreLocation`); for SQLite, creates the file's
/// directory when missing.
public func openStore(url: String, tls: EtcdTLSFiles? = nil) async throws -> any Store {
    try await openStore(StoreLocation(parsing: url, tls: tls))
}

public func openStore(_ location: StoreLocation) async throws -> any Store {
    switch location {
    case .sqlite(let path):
        let directory = (path as NSString).deletingLastPathComponent
        // The store is root's alone: directories Strait creates are 0700 (`mkdir -p -m 700`, every
        // level), the file 0600 (SQLiteConnection).
        var current = directory.hasPrefix("/") ? "" : "."
        for component in directory.split(separator: "/") where !directory.isEmpty {
            current += "/\(component)"
            if mkdir(current, 0o700) != 0 && errno != EEXIST {
                throw StoreError(.backend, operation: "open",
                                 detail: "cannot create \(current): \(String(cString: strerror(errno)))")
            }
        }
        return try await SQLiteStore(path: path)
    case .etcd(let endpoints, let tls):
        return try EtcdStore(endpoints: endpoints, tls: tls)
    }
}

extension String {
    fileprivate func dropPrefix(_ prefix: String) -> String? {
        hasPrefix(prefix) ? String(dropFirst(prefix.count)) : nil
    }
}

import Foundation

/// Where the API server is and how to prove who we are: what a kubeconfig context, the in-cluster
/// service account or `--master` resolve to. Certificates and keys are PEM bytes, read at
/// resolution time so a missing file is reported at start-up, naming the user or cluster.
public struct KubeConnection: Sendable, Hashable, CustomStringConvertible {
    /// How the server's certificate is checked.
    public enum Trust: Sendable, Hashable {
        /// The system's CA bundle.
        case system
        /// These PEM certificates only (`certificate-authority`, the service account's `ca.crt`).
        case certificates([UInt8])
        /// `insecure-skip-tls-verify: true`.
        case insecure
    }

    /// How requests are authenticated.
    public enum Credential: Sendable, Hashable {
        case none
        case token(String)
        /// A file holding the token, read again whenever it changes (service-account tokens rotate).
        case tokenFile(String)
        case basic(username: String, password: String)
    }

    /// `https://host:port` (a path prefix is kept).
    public var server: URL
    public var trust: Trust
    public var credential: Credential
    /// Client certificate chain and key, PEM.
    public var clientCertificate: [UInt8]?
    public var clientKey: [UInt8]?
    /// Where this came from: `kubeconfig /etc/kube.conf context admin@k (user admin)`.
    public var origin: String

    public init(server: URL, trust: Trust = .system, credential: Credential = .none,
                clientCertificate: [UInt8]? = nil, clientKey: [UInt8]? = nil, origin: String) {
        self.server = server
        self.trust = trust
        self.credential = credential
        self.clientCertificate = clientCertificate
        self.clientKey = clientKey
        self.origin = origin
    }

    public var description: String { "\(server.absoluteString) (\(origin))" }

    /// The connection a kubeconfig's context describes (`context` nil: its `current-context`).
    public static func from(_ config: KubeConfig, context requested: String? = nil,
                            source: String) throws(KubeError) -> KubeConnection {
        let operation = "use kubeconfig \(source)"
        guard let contextName = requested ?? config.currentContext else {
            throw .configuration(operation, "no current-context is set and no context was named")
        }
        guard let context = config.contexts[contextName] else {
            throw .configuration(operation, "context \(String(reflecting: contextName)) is not defined")
        }
        guard let cluster = config.clusters[context.cluster] else {
            throw .configuration(operation, "context \(contextName): cluster \(String(reflecting: context.cluster)) is not defined")
        }
        let clusterName = "cluster \(context.cluster)"
        guard let serverText = cluster.server else { throw .configuration(operation, "\(clusterName) has no server") }
        let server = try parseServer(serverText, operation: operation, what: "\(clusterName) server")
        if let proxy = cluster.proxyURL {
            throw .configuration(operation, "\(clusterName): proxy-url \(proxy) is not supported; reach the API server directly")
        }
        if let name = cluster.tlsServerName {
            throw .configuration(operation, "\(clusterName): tls-server-name \(name) is not supported; use a server "
                                 + "address its certificate names")
        }

        var trust = Trust.system
        if cluster.insecureSkipTLSVerify {
            trust = .insecure
        } else if let data = cluster.certificateAuthorityData {
            trust = .certificates(try decodeBase64(data, operation: operation, what: "\(clusterName) certificate-authority-data"))
        } else if let file = cluster.certificateAuthority {
            trust = .certificates(try readFile(file, operation: operation, what: "\(clusterName) certificate-authority"))
        }

        var connection = KubeConnection(server: server, trust: trust,
                                        origin: "kubeconfig \(source), context \(contextName)")
        // A context without a user is allowed (anonymous), as in kubectl.
        if !context.user.isEmpty {
            guard let user = config.users[context.user] else {
                throw .configuration(operation, "context \(contextName): user \(String(reflecting: context.user)) is not defined")
            }
            let userName = "user \(context.user)"
            connection.origin += ", \(userName)"
            if let command = user.execCommand {
                throw .configuration(operation, "\(userName) gets its credentials from the exec plugin \(command), which "
                                     + "Strait does not run; give it a token, token file or client certificate")
            }
            if let provider = user.authProvider {
                throw .configuration(operation, "\(userName) uses the auth-provider \(provider), which Strait does not "
                                     + "support; give it a token, token file or client certificate")
            }
            if let token = user.token {
                connection.credential = .token(token)
            } else if let file = user.tokenFile {
                _ = try readFile(file, operation: operation, what: "\(userName) tokenFile")
                connection.credential = .tokenFile(file)
            } else if let username = user.username {
                connection.credential = .basic(username: username, password: user.password ?? "")
            }
            if let data = user.clientCertificateData {
                connection.clientCertificate = try decodeBase64(data, operation: operation,
                                                                what: "\(userName) client-certificate-data")
            } else if let file = user.clientCertificate {
                connection.clientCertificate = try readFile(file, operation: operation, what: "\(userName) client-certificate")
            }
            if let data = user.clientKeyData {
                connection.clientKey = try decodeBase64(data, operation: operation, what: "\(userName) client-key-data")
            } else if let file = user.clientKey {
                connection.clientKey = try readFile(file, operation: operation, what: "\(userName) client-key")
            }
            if (connection.clientCertificate == nil) != (connection.clientKey == nil) {
                throw .configuration(operation, "\(userName) has a client certificate without its key or a key without "
                                     + "its certificate")
            }
        }
        return connection
    }

    /// The files a pod's service account provides, and the environment the kubelet sets.
    public struct InCluster: Sendable {
        public var tokenFile = "/var/run/secrets/kubernetes.io/serviceaccount/token"
        public var caFile = "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt"
        public var environment: [String: String]

        public init(environment: [String: String] = ProcessInfo.processInfo.environment) {
            self.environment = environment
        }

        /// True when `KUBERNETES_SERVICE_HOST` and `_PORT` are set: running in a pod.
        public var isAvailable: Bool {
            !(environment["KUBERNETES_SERVICE_HOST"] ?? "").isEmpty && !(environment["KUBERNETES_SERVICE_PORT"] ?? "").isEmpty
        }
    }

    /// client-go's `rest.InClusterConfig`: `https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT`,
    /// the service account's token (read again when it rotates) and its CA.
    public static func inCluster(_ inCluster: InCluster = InCluster()) throws(KubeError) -> KubeConnection {
        let operation = "use the in-cluster service account"
        guard inCluster.isAvailable, let host = inCluster.environment["KUBERNETES_SERVICE_HOST"],
              let port = inCluster.environment["KUBERNETES_SERVICE_PORT"] else {
            throw .configuration(operation, "KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not set (not in a pod)")
        }
        let authority = host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
        let server = try parseServer("https://\(authority)", operation: operation, what: "KUBERNETES_SERVICE_HOST/PORT")
        _ = try readFile(inCluster.tokenFile, operation: operation, what: "the service-account token")
        let ca = try readFile(inCluster.caFile, operation: operation, what: "the service-account CA")
        return KubeConnection(server: server, trust: .certificates(ca), credential: .tokenFile(inCluster.tokenFile),
                              origin: "in-cluster service account")
    }

    /// `--master`: replaces the server of a kubeconfig, or alone, an unauthenticated server (as
    /// `kube-proxy --master` without `--kubeconfig`).
    public func replacingServer(_ master: String) throws(KubeError) -> KubeConnection {
        var copy = self
        copy.server = try Self.parseServer(master, operation: "use --master", what: "--master")
        copy.origin += ", server from --master"
        return copy
    }

    static func parseServer(_ text: String, operation: String, what: String) throws(KubeError) -> URL {
        // kubectl accepts a bare host:port and means https.
        let full = text.contains("://") ? text : "https://" + text
        guard let url = URL(string: full), let scheme = url.scheme, ["http", "https"].contains(scheme),
              let host = url.host, !host.isEmpty else {
            throw .configuration(operation, "\(what) \(String(reflecting: text)) is not an http(s) URL")
        }
        let trimmed = full.hasSuffix("/") ? String(full.dropLast()) : full
        return URL(string: trimmed) ?? url
    }

    static func readFile(_ path: String, operation: String, what: String) throws(KubeError) -> [UInt8] {
        guard let data = FileManager.default.contents(atPath: path) else {
            let reason = FileManager.default.fileExists(atPath: path) ? "cannot be read" : "no such file"
            throw .configuration(operation, "\(what) \(path): \(reason)")
        }
        return Array(data)
    }

    static func decodeBase64(_ text: String, operation: String, what: String) throws(KubeError) -> [UInt8] {
        let compact = text.filter { !$0.isWhitespace }
        guard let data = Data(base64Encoded: compact) else {
            throw .configuration(operation, "\(what) is not base64")
        }
        return Array(data)
    }
}

import Foundation
import Yams

/// A kubeconfig file as `kubectl` writes it: clusters, users, contexts and the current context.
/// Only the fields Strait can honour are read; those that would change how Strait must talk to
/// the server (exec plugins, auth providers, proxies) are kept so `KubeConnection` can refuse them
/// by name. Several files (`$KUBECONFIG=a:b`) merge as kubectl merges them: the first file that
/// names a cluster, user or context wins, and the first `current-context` wins.
public struct KubeConfig: Sendable, Hashable {
    public struct Cluster: Sendable, Hashable {
        public var server: String?
        public var certificateAuthority: String?
        public var certificateAuthorityData: String?
        public var insecureSkipTLSVerify = false
        public var tlsServerName: String?
        public var proxyURL: String?
    }

    public struct User: Sendable, Hashable {
        public var token: String?
        public var tokenFile: String?
        public var clientCertificate: String?
        public var clientCertificateData: String?
        public var clientKey: String?
        public var clientKeyData: String?
        public var username: String?
        public var password: String?
        /// The `command` of an `exec` credential plugin, when there is one.
        public var execCommand: String?
        /// The `name` of an `auth-provider`, when there is one.
        public var authProvider: String?
    }

    public struct Context: Sendable, Hashable {
        public var cluster: String
        public var user: String
        public var namespace: String?
    }

    public var clusters: [String: Cluster] = [:]
    public var users: [String: User] = [:]
    public var contexts: [String: Context] = [:]
    public var currentContext: String?

    public init() {}

    /// Reads one kubeconfig file; relative file paths in it are taken relative to its directory,
    /// as kubectl does.
    public static func load(file path: String) throws(KubeError) -> KubeConfig {
        let operation = "read kubeconfig \(path)"
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw .configuration(operation, "cannot read the file: \(Self.reason(error))")
        }
        let directory = (path as NSString).deletingLastPathComponent
        return try parse(text, source: path, directory: directory.isEmpty ? "." : directory)
    }

    /// Reads `$KUBECONFIG`-style lists: paths separated by `:`, merged in order; missing files
    /// are skipped as kubectl skips them, but at least one must exist.
    public static func load(files paths: [String]) throws(KubeError) -> KubeConfig {
        var merged = KubeConfig()
        var found = false
        for path in paths where !path.isEmpty {
            guard FileManager.default.fileExists(atPath: path) else { continue }
            found = true
            let config = try load(file: path)
            merged.clusters.merge(config.clusters) { first, _ in first }
            merged.users.merge(config.users) { first, _ in first }
            merged.contexts.merge(config.contexts) { first, _ in first }
            if merged.currentContext == nil || merged.currentContext == "" { merged.currentContext = config.currentContext }
        }
        guard found else {
            throw .configuration("read kubeconfig \(paths.joined(separator: ":"))", "no such file")
        }
        return merged
    }

    /// Parses kubeconfig YAML (or JSON). `directory` resolves relative file paths; `source` names
    /// the text in errors.
    public static func parse(_ text: String, source: String = "kubeconfig",
                             directory: String = ".") throws(KubeError) -> KubeConfig {
        let operation = "read kubeconfig \(source)"
        let root: Yams.Node
        do {
            guard let node = try Yams.compose(yaml: text) else { throw KubeError.configuration(operation, "empty") }
            root = node
        } catch let error as KubeError {
            throw error
        } catch {
            throw .configuration(operation, "not YAML: \(error)")
        }
        guard root.mapping != nil else { throw .configuration(operation, "expected a mapping at the top") }
        if let kind = root["kind"]?.string, kind != "Config" {
            throw .configuration(operation, "kind is \(String(reflecting: kind)), expected Config")
        }
        func path(_ value: String?) -> String? {
            guard let value, !value.isEmpty else { return nil }
            return value.hasPrefix("/") ? value : directory + "/" + value
        }
        func string(_ node: Yams.Node?, _ key: String) -> String? {
            guard let text = node?[key]?.string, !text.isEmpty else { return nil }
            return text
        }
        func entries(_ key: String, inner: String) throws(KubeError) -> [(String, Yams.Node)] {
            guard let node = root[key], node.scalar?.string != "null" else { return [] }
            guard let items = node.sequence else { throw .configuration(operation, "\(key): expected a list") }
            var result: [(String, Yams.Node)] = []
            for (index, item) in items.enumerated() {
                guard let name = item["name"]?.string else {
                    throw .configuration(operation, "\(key)[\(index)]: has no name")
                }
                guard let body = item[inner], body.mapping != nil else {
                    throw .configuration(operation, "\(key)[\(index)] (\(name)): has no \(inner) mapping")
                }
                result.append((name, body))
            }
            return result
        }

        var config = KubeConfig()
        for (name, node) in try entries("clusters", inner: "cluster") where config.clusters[name] == nil {
            var cluster = Cluster()
            cluster.server = string(node, "server")
            cluster.certificateAuthority = path(string(node, "certificate-authority"))
            cluster.certificateAuthorityData = string(node, "certificate-authority-data")
            cluster.insecureSkipTLSVerify = node["insecure-skip-tls-verify"]?.bool ?? false
            cluster.tlsServerName = string(node, "tls-server-name")
            cluster.proxyURL = string(node, "proxy-url")
            config.clusters[name] = cluster
        }
        for (name, node) in try entries("users", inner: "user") where config.users[name] == nil {
            var user = User()
            user.token = string(node, "token")
            user.tokenFile = path(string(node, "tokenFile"))
            user.clientCertificate = path(string(node, "client-certificate"))
            user.clientCertificateData = string(node, "client-certificate-data")
            user.clientKey = path(string(node, "client-key"))
            user.clientKeyData = string(node, "client-key-data")
            user.username = string(node, "username")
            user.password = string(node, "password")
            if let exec = node["exec"], exec.mapping != nil { user.execCommand = string(exec, "command") ?? "(no command)" }
            if let provider = node["auth-provider"], provider.mapping != nil {
                user.authProvider = string(provider, "name") ?? "(unnamed)"
            }
            config.users[name] = user
        }
        for (name, node) in try entries("contexts", inner: "context") where config.contexts[name] == nil {
            config.contexts[name] = Context(cluster: string(node, "cluster") ?? "", user: string(node, "user") ?? "",
                                            namespace: string(node, "namespace"))
        }
        config.currentContext = string(root, "current-context")
        return config
    }

    static func reason(_ error: any Error) -> String {
        if let error = error as? CocoaError, let underlying = error.userInfo[NSUnderlyingErrorKey] as? NSError {
            return String(cString: strerror(Int32(underlying.code)))
        }
        return "\(error)"
    }
}

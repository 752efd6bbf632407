import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import NIOSSL

/// A client for one API server: TLS and credentials from a `KubeConnection`, every request paced
/// by a `RateLimiter`, JSON only. `get` reads a whole answer (a list page); `watch` streams a
/// watch's newline-delimited events. Call `shutdown()` when done.
public final class KubeClient: Sendable {
    public let connection: KubeConnection
    public let limiter: RateLimiter
    private let http: HTTPClient
    private let token: TokenFile?

    /// - Parameters:
    ///   - qps, burst: client-side request pacing (`--kube-api-qps`, `--kube-api-burst`).
    ///   - contentType: `--kube-api-content-type`; only JSON is spoken.
    public init(connection: KubeConnection, qps: Double = 5, burst: Int = 10,
                contentType: String? = nil) throws(KubeError) {
        try KubeContentType.check(contentType)
        self.connection = connection
        limiter = RateLimiter(qps: qps, burst: burst)
        if case .tokenFile(let path) = connection.credential { token = TokenFile(path: path) } else { token = nil }

        var configuration = HTTPClient.Configuration(redirectConfiguration: .disallow,
                                                     timeout: .init(connect: .seconds(10), read: nil))
        if connection.server.scheme == "https" {
            configuration.tlsConfiguration = try Self.tls(connection)
        }
        http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }

    private static func tls(_ connection: KubeConnection) throws(KubeError) -> TLSConfiguration {
        let operation = "set up TLS to \(connection.server.absoluteString)"
        var tls = TLSConfiguration.makeClientConfiguration()
        do {
            switch connection.trust {
            case .system: break
            case .insecure: tls.certificateVerification = .none
            case .certificates(let pem):
                tls.trustRoots = .certificates(try NIOSSLCertificate.fromPEMBytes(pem))
            }
        } catch {
            throw .configuration(operation, "the CA certificate of \(connection.origin) is not PEM: \(error)")
        }
        if let certificate = connection.clientCertificate, let key = connection.clientKey {
            do {
                tls.certificateChain = try NIOSSLCertificate.fromPEMBytes(certificate).map { .certificate($0) }
                tls.privateKey = .privateKey(try NIOSSLPrivateKey(bytes: key, format: .pem))
            } catch {
                throw .configuration(operation, "the client certificate or key of \(connection.origin) is not PEM: \(error)")
            }
        }
        return tls
    }

    /// Closes every connection.
    public func shutdown() async {
        try? await http.shutdown()
    }

    deinit {
        // A client dropped without `shutdown()` still closes its connections (a second shutdown
        // is refused harmlessly).
        http.shutdown { _ in }
    }

    /// GET `path?query` and the whole body, or a `KubeError` with the status and the server's
    /// message. Equivalent: `kubectl get --raw PATH`.
    public func get(_ path: String, query: [(String, String)] = [], operation: String,
                    timeout: Duration = .seconds(60)) async throws -> Data {
        let response = try await send(path, query: query, operation: operation, deadline: timeout)
        return try await Self.whole(response, operation: operation, path: path)
    }

    /// How a PATCH body is to be read (`kubectl patch --type`).
    public enum PatchType: String, Sendable {
        /// `--type merge`: RFC 7386; maps merge, lists are replaced.
        case merge = "application/merge-patch+json"
        /// `--type strategic`: lists with a merge key (a Node's `status.conditions` by `type`) merge by it.
        case strategic = "application/strategic-merge-patch+json"
    }

    /// PATCH `path` with `body` and the object as changed. Equivalent:
    /// `kubectl patch node N --subresource=status --type merge -p BODY`.
    @discardableResult
    public func patch(_ path: String, body: Data, type: PatchType, operation: String,
                      timeout: Duration = .seconds(60)) async throws -> Data {
        let response = try await send(path, query: [], operation: operation, deadline: timeout, method: .PATCH,
                                      body: body, contentType: type.rawValue)
        return try await Self.whole(response, operation: operation, path: path)
    }

    /// POST `body` (an object, JSON) to the collection at `path` and the object as created.
    /// Equivalent: `kubectl create -f OBJECT.json`.
    @discardableResult
    public func create(_ path: String, body: Data, operation: String, timeout: Duration = .seconds(60)) async throws -> Data {
        let response = try await send(path, query: [], operation: operation, deadline: timeout, method: .POST,
                                      body: body, contentType: KubeContentType.json)
        return try await Self.whole(response, operation: operation, path: path)
    }

    /// The whole body of a 2xx answer, or the `KubeError` of any other.
    private static func whole(_ response: HTTPClientResponse, operation: String, path: String) async throws -> Data {
        let body: ByteBuffer
        do {
            body = try await response.body.collect(upTo: 1 << 30)
        } catch {
            throw KubeError(.transport, operation: operation, detail: "reading the answer: \(error)")
        }
        let data = Data(body.readableBytesView)
        guard response.status.code / 100 == 2 else {
            throw Self.statusError(Int(response.status.code), data, operation: operation, url: path)
        }
        return data
    }

    /// GET a watch (`path?watch=true&…`) and yield each event line as it arrives. The stream
    /// ends when the server closes the watch (its `timeoutSeconds`), and throws when the
    /// connection breaks, the server refuses (`KubeError` with the status), or nothing ends the
    /// watch within `timeout` (a silent, dead connection).
    public func watch(_ path: String, query: [(String, String)], operation: String,
                      timeout: Duration) -> AsyncThrowingStream<Data, any Error> {
        let (stream, continuation) = AsyncThrowingStream<Data, any Error>.makeStream()
        let task = Task {
            do {
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask {
                        let response = try await self.send(path, query: query, operation: operation, deadline: .seconds(60))
                        guard response.status.code / 100 == 2 else {
                            let body = (try? await response.body.collect(upTo: 1 << 20)).map { Data($0.readableBytesView) } ?? Data()
                            throw Self.statusError(Int(response.status.code), body, operation: operation, url: path)
                        }
                        var pending = Data()
                        do {
                            for try await buffer in response.body {
                                pending.append(contentsOf: buffer.readableBytesView)
                                while let newline = pending.firstIndex(of: UInt8(ascii: "\n")) {
                                    let line = pending[pending.startIndex..<newline]
                                    if !line.isEmpty { continuation.yield(Data(line)) }
                                    pending = Data(pending[(newline + 1)...])
                                }
                            }
                        } catch {
                            throw KubeError(.transport, operation: operation, detail: "the watch broke: \(error)")
                        }
                        if !pending.isEmpty { continuation.yield(pending) }
                    }
                    group.addTask {
                        try await Task.sleep(for: timeout)
                        throw KubeError(.transport, operation: operation, detail: "no end of the watch within \(timeout)")
                    }
                    defer { group.cancelAll() }
                    try await group.next()
                }
                continuation.finish()
            } catch {
                continuation.finish(throwing: error)
            }
        }
        continuation.onTermination = { _ in task.cancel() }
        return stream
    }

    private func send(_ path: String, query: [(String, String)], operation: String, deadline: Duration,
                      method: HTTPMethod = .GET, body: Data? = nil,
                      contentType: String? = nil) async throws -> HTTPClientResponse {
        try await limiter.acquire()
        var request = HTTPClientRequest(url: url(path, query: query))
        request.method = method
        if let body {
            request.body = .bytes(ByteBuffer(bytes: body))
            request.headers.add(name: "Content-Type", value: contentType ?? KubeContentType.json)
        }
        request.headers.add(name: "Accept", value: KubeContentType.json)
        request.headers.add(name: "User-Agent", value: "strait")
        switch connection.credential {
        case .none: break
        case .token(let value): request.headers.add(name: "Authorization", value: "Bearer \(value)")
        case .tokenFile:
            if let value = try token?.current(operation: operation) {
                request.headers.add(name: "Authorization", value: "Bearer \(value)")
            }
        case .basic(let username, let password):
            let encoded = Data("\(username):\(password)".utf8).base64EncodedString()
            request.headers.add(name: "Authorization", value: "Basic \(encoded)")
        }
        do {
            return try await http.execute(request, timeout: .seconds(deadline.components.seconds))
        } catch {
            throw KubeError(.transport, operation: operation,
                            detail: "\(connection.server.absoluteString) did not answer: \(error)")
        }
    }

    /// `https://server/path?k=v&…`, values percent-encoded.
    func url(_ path: String, query: [(String, String)]) -> String {
        var text = connection.server.absoluteString + path
        if !query.isEmpty {
            var allowed = CharacterSet.alphanumerics
            allowed.insert(charactersIn: "-._~")
            text += "?" + query.map { key, value in
                "\(key)=\(value.addingPercentEncoding(withAllowedCharacters: allowed) ?? value)"
            }.joined(separator: "&")
        }
        return text
    }

    /// A `KubeError` from a non-2xx answer: the server's `Status` message when the body is one.
    static func statusError(_ code: Int, _ body: Data, operation: String, url: String) -> KubeError {
        var detail = "HTTP \(code)"
        if let status = try? JSONDecoder().decode(KubeStatus.self, from: body) {
            if let reason = status.reason, !reason.isEmpty { detail += " \(reason)" }
            if let message = status.message, !message.isEmpty, message != status.reason { detail += ": \(message)" }
        } else if let text = String(data: body.prefix(200), encoding: .utf8), !text.isEmpty {
            detail += ": \(text.trimmingCharacters(in: .whitespacesAndNewlines))"
        }
        switch code {
        case 401: detail += " (the credentials were refused)"
        case 403: detail += " (the user lacks RBAC permission)"
        default: break
        }
        return KubeError(.status(code), operation: operation, detail: detail)
    }
}

/// The API server's `Status` object (an error answer, or a watch `ERROR` event's object).
struct KubeStatus: Decodable, Sendable {
    var code: Int?
    var reason: String?
    var message: String?
}

/// `--kube-api-content-type`: Strait speaks JSON only.
public enum KubeContentType {
    public static let json = "application/json"
    public static let protobuf = "application/vnd.kubernetes.protobuf"

    /// Accepts nil, "" and `application/json`; refuses anything else, naming it.
    public static func check(_ text: String?) throws(KubeError) {
        guard let text, !text.isEmpty, text != json else { return }
        let why = text == protobuf ? "Strait decodes JSON only" : "not a content type Strait knows"
        throw .configuration("--kube-api-content-type \(text)", "\(why); use \(json)")
    }
}

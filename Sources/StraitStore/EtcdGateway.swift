import AsyncHTTPClient
import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL

/// One etcd client URL: `host:port`.
public struct EtcdEndpoint: Hashable, Sendable, CustomStringConvertible {
    public var host: String
    public var port: Int

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}

/// PEM files for a TLS connection to etcd: `--etcd-cafile`, `--etcd-certfile`, `--etcd-keyfile`.
public struct EtcdTLSFiles: Hashable, Sendable {
    /// Trusted CA bundle; the system roots when `nil`.
    public var caFile: String?
    /// Client certificate and key, for etcd's `--client-cert-auth`.
    public var certFile: String?
    public var keyFile: String?

    public init(caFile: String? = nil, certFile: String? = nil, keyFile: String? = nil) {
        self.caFile = caFile
        self.certFile = certFile
        self.keyFile = keyFile
    }
}

/// The HTTP/1.1 side of etcd's gRPC gateway (`POST /v3/...` with JSON bodies), over
/// async-http-client (the same HTTP client as the Kubernetes API's).
///
/// The gateway serves the same v3 API as gRPC, which spares us a protobuf code generator
/// and an HTTP/2 stack: unary calls are one request and one JSON response; streaming calls
/// (`/v3/watch`) answer with newline-delimited JSON objects for as long as the connection
/// lives. Each call uses its own connection (`maximumUsesPerConnection` 1), so a broken one
/// never poisons the next call.
///
/// Fail-over: calls go to the endpoint that last worked; when connecting fails the next
/// endpoint is tried, in order, until one answers. A call that broke after it was sent is
/// not repeated (a transaction could apply twice); the next call starts at the next endpoint.
final class EtcdGateway: Sendable {
    let endpoints: [EtcdEndpoint]
    private let scheme: String
    private let http: HTTPClient
    private let preferred = NIOLockedValueBox(0)

    init(endpoints: [EtcdEndpoint], tls: EtcdTLSFiles?) throws {
        precondition(!endpoints.isEmpty, "at least one etcd endpoint")
        self.endpoints = endpoints
        var configuration = HTTPClient.Configuration(redirectConfiguration: .disallow,
                                                     timeout: .init(connect: .seconds(3), read: nil))
        configuration.httpVersion = .http1Only
        configuration.maximumUsesPerConnection = 1
        // A refused endpoint fails the call at once, so the next endpoint is tried at once.
        configuration.connectionPool.retryConnectionEstablishment = false
        if let tls {
            var tlsConfiguration = TLSConfiguration.makeClientConfiguration()
            do {
                if let caFile = tls.caFile {
                    tlsConfiguration.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(caFile))
                }
                if let certFile = tls.certFile {
                    let chain = try NIOSSLCertificate.fromPEMFile(certFile)
                    tlsConfiguration.certificateChain = chain.map { .certificate($0) }
                }
                if let keyFile = tls.keyFile {
                    tlsConfiguration.privateKey = .privateKey(try NIOSSLPrivateKey(file: keyFile, format: .pem))
                }
                _ = try NIOSSLContext(configuration: tlsConfiguration)
            } catch {
                throw StoreError(.invalidURL, operation: "open", detail: "etcd TLS files: \(error)")
            }
            configuration.tlsConfiguration = tlsConfiguration
            scheme = "https"
        } else {
            scheme = "http"
        }
        http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }

    deinit {
        // The store has no asynchronous close; its connections end with it.
        http.shutdown { _ in }
    }

    /// A unary call: posts `body` to `path` and returns the response body. Non-200 answers
    /// become `StoreError`s built from etcd's `{"error", "code"}` body.
    func call(_ path: String, _ body: [String: Any], operation: String, key: String? = nil) async throws -> Data {
        let payload = try JSONSerialization.data(withJSONObject: body)
        let (status, data) = try await withEndpoint(path, payload, operation: operation, key: key) { response in
            let buffer = try await response.body.collect(upTo: 1 << 30)
            return (response.status, Data(buffer.readableBytesView))
        }
        guard status == .ok else { throw Self.failure(status, data, operation: operation, key: key) }
        return data
    }

    /// A streaming call: posts `body` to `path` and hands each newline-delimited JSON
    /// message to `message` until the server ends the stream (returns normally), the
    /// connection breaks (throws), or `message` returns `false`.
    func stream(
        _ path: String, _ body: [String: Any], operation: String, key: String? = nil,
        message: (Data) async throws -> Bool
    ) async throws {
        let payload = try JSONSerialization.data(withJSONObject: body)
        try await withEndpoint(path, payload, operation: operation, key: key) { response in
            guard response.status == .ok else {
                let buffer = try await response.body.collect(upTo: 1 << 20)
                throw Self.failure(response.status, Data(buffer.readableBytesView), operation: operation, key: key)
            }
            var pending = Data()
            for try await buffer in response.body {
                pending.append(contentsOf: buffer.readableBytesView)
                while let newline = pending.firstIndex(of: UInt8(ascii: "\n")) {
                    let line = pending[pending.startIndex..<newline]
                    pending = Data(pending[(newline + 1)...])
                    if line.isEmpty { continue }
                    if try await !message(Data(line)) { return }
                }
            }
            if Task.isCancelled { throw CancellationError() }
            if !pending.isEmpty { _ = try await message(pending) }
        }
    }

    // MARK: Endpoints

    /// Posts `payload` to the preferred endpoint, or the next ones in order when connecting
    /// fails, and runs `body` on the first response.
    private func withEndpoint<T>(
        _ path: String, _ payload: Data, operation: String, key: String?,
        _ body: (HTTPClientResponse) async throws -> T
    ) async throws -> T {
        let start = preferred.withLockedValue { $0 }
        var failures: [String] = []
        for offset in 0..<endpoints.count {
            let index = (start + offset) % endpoints.count
            let endpoint = endpoints[index]
            var request = HTTPClientRequest(url: "\(scheme)://\(endpoint)\(path)")
            request.method = .POST
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(bytes: payload))
            let response: HTTPClientResponse
            do {
                response = try await http.execute(request, timeout: .seconds(60))
            } catch let error where Self.isConnectFailure(error) {
                if Task.isCancelled { throw CancellationError() }
                failures.append("\(endpoint): \(error)")
                continue
            } catch {
                if Task.isCancelled { throw CancellationError() }
                preferred.withLockedValue { $0 = (index + 1) % endpoints.count }
                throw StoreError(.unavailable, operation: operation, key: key, detail: "\(endpoint): \(error)")
            }
            if offset != 0 { preferred.withLockedValue { $0 = index } }
            do {
                return try await body(response)
            } catch let error as StoreError {
                throw error
            } catch is CancellationError {
                throw CancellationError()
            } catch {
                // The connection broke mid-call: the next call starts with the next endpoint.
                preferred.withLockedValue { $0 = (index + 1) % endpoints.count }
                if Task.isCancelled { throw CancellationError() }
                throw StoreError(.unavailable, operation: operation, key: key, detail: "\(endpoint): \(error)")
            }
        }
        throw StoreError(
            .unavailable, operation: operation, key: key,
            detail: "no etcd endpoint answered: " + failures.joined(separator: "; "))
    }

    /// Whether `error` came before the request could be sent: no connection (refused, timed
    /// out, TLS handshake failed), so trying another endpoint cannot apply it twice.
    private static func isConnectFailure(_ error: any Error) -> Bool {
        if let error = error as? HTTPClientError {
            return error == .connectTimeout || error == .getConnectionFromPoolTimeout
        }
        return error is NIOConnectionError || error is IOError || error is ChannelError || error is NIOSSLError
    }

    /// Maps etcd's error body (`{"error": "...", "code": <gRPC code>}`) to a `StoreError`.
    static func failure(_ status: HTTPResponseStatus, _ body: Data, operation: String, key: String?) -> StoreError {
        let decoded = try? JSONDecoder().decode(EtcdJSON.ErrorBody.self, from: body)
        let message = decoded?.error ?? decoded?.message ?? String(decoding: body.prefix(200), as: UTF8.self)
        let code: StoreError.Code =
            switch decoded?.code {
            case 5 where message.contains("lease"): .leaseNotFound  // NOT_FOUND
            case 11: .compacted  // OUT_OF_RANGE: required revision has been compacted
            case 14: .unavailable  // UNAVAILABLE
            default: .backend
            }
        return StoreError(code, operation: operation, key: key, detail: "etcd: HTTP \(status.code): \(message)")
    }
}

import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import NIOTLS

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

/// The HTTP/1.1 side of etcd's gRPC gateway (`POST /v3/...` with JSON bodies), over SwiftNIO.
///
/// The gateway serves the same v3 API as gRPC, which spares us a protobuf code generator
/// and an HTTP/2 stack: unary calls are one request and one JSON response; streaming calls
/// (`/v3/watch`) answer with newline-delimited JSON objects for as long as the connection
/// lives. Each call uses its own connection, so a broken one never poisons the next call.
///
/// Fail-over: calls go to the endpoint that last worked; when connecting fails the next
/// endpoint is tried, in order, until one answers.
final class EtcdGateway: Sendable {
    let endpoints: [EtcdEndpoint]
    private let sslContext: NIOSSLContext?
    private let tls: EtcdTLSFiles?
    private let preferred = NIOLockedValueBox(0)
    private let group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton

    init(endpoints: [EtcdEndpoint], tls: EtcdTLSFiles?) throws {
        precondition(!endpoints.isEmpty, "at least one etcd endpoint")
        self.endpoints = endpoints
        self.tls = tls
        if let tls {
            var configuration = TLSConfiguration.makeClientConfiguration()
            do {
                if let caFile = tls.caFile {
                    configuration.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(caFile))
                }
                if let certFile = tls.certFile {
                    let chain = try NIOSSLCertificate.fromPEMFile(certFile)
                    configuration.certificateChain = chain.map { .certificate($0) }
                }
                if let keyFile = tls.keyFile {
                    configuration.privateKey = .privateKey(try NIOSSLPrivateKey(file: keyFile, format: .pem))
                }
                sslContext = try NIOSSLContext(configuration: configuration)
            } catch {
                throw StoreError(.invalidURL, operation: "open", detail: "etcd TLS files: \(error)")
            }
        } else {
            sslContext = nil
        }
    }

    /// A unary call: posts `body` to `path` and returns the response body. Non-200 answers
    /// become `StoreError`s built from etcd's `{"error", "code"}` body.
    func call(_ path: String, _ body: [String: Any], operation: String, key: String? = nil) async throws -> Data {
        let payload = try JSONSerialization.data(withJSONObject: body)
        let (status, data) = try await withEndpoint(operation: operation, key: key) { channel in
            try await channel.executeThenClose { inbound, outbound in
                try await Self.send(payload, to: path, endpoint: channel.endpoint, outbound)
                var status = HTTPResponseStatus.ok
                var data = Data()
                for try await part in inbound {
                    switch part {
                    case .head(let head): status = head.status
                    case .body(let buffer): data.append(contentsOf: buffer.readableBytesView)
                    case .end: return (status, data)
                    }
                }
                throw StoreError(.unavailable, operation: operation, key: key, detail: "connection closed mid-response")
            }
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
        try await withEndpoint(operation: operation, key: key) { channel in
            let nioChannel = channel.async.channel
            try await withTaskCancellationHandler {
                try await channel.async.executeThenClose { inbound, outbound in
                    try await Self.send(payload, to: path, endpoint: channel.endpoint, outbound)
                    var pending = Data()
                    var status = HTTPResponseStatus.ok
                    for try await part in inbound {
                        switch part {
                        case .head(let head):
                            status = head.status
                        case .body(let buffer):
                            pending.append(contentsOf: buffer.readableBytesView)
                            if status != .ok { continue }
                            while let newline = pending.firstIndex(of: UInt8(ascii: "\n")) {
                                let line = pending[pending.startIndex..<newline]
                                pending = Data(pending[(newline + 1)...])
                                if line.isEmpty { continue }
                                if try await !message(Data(line)) { return }
                            }
                        case .end:
                            if status != .ok { throw Self.failure(status, pending, operation: operation, key: key) }
                            if !pending.isEmpty { _ = try await message(pending) }
                            return
                        }
                    }
                    if Task.isCancelled { throw CancellationError() }
                    throw StoreError(.unavailable, operation: operation, key: key, detail: "stream closed by etcd")
                }
            } onCancel: {
                nioChannel.close(promise: nil)
            }
        }
    }

    // MARK: Connections

    private struct Connection {
        var async: NIOAsyncChannel<HTTPClientResponsePart, HTTPClientRequestPart>
        var endpoint: EtcdEndpoint
        func executeThenClose<T>(
            _ body: (NIOAsyncChannelInboundStream<HTTPClientResponsePart>,
                NIOAsyncChannelOutboundWriter<HTTPClientRequestPart>) async throws -> T
        ) async throws -> T {
            try await async.executeThenClose(body)
        }
    }

    /// Connects to the preferred endpoint, or the next ones in order, and runs `body` on
    /// the first connection that opens.
    private func withEndpoint<T>(
        operation: String, key: String?, _ body: (Connection) async throws -> T
    ) async throws -> T {
        let start = preferred.withLockedValue { $0 }
        var failures: [String] = []
        for offset in 0..<endpoints.count {
            let index = (start + offset) % endpoints.count
            let endpoint = endpoints[index]
            let channel: NIOAsyncChannel<HTTPClientResponsePart, HTTPClientRequestPart>
            do {
                channel = try await connect(endpoint)
            } catch {
                failures.append("\(endpoint): \(describe(error))")
                continue
            }
            if offset != 0 { preferred.withLockedValue { $0 = index } }
            do {
                return try await body(Connection(async: channel, endpoint: endpoint))
            } catch let error as StoreError {
                throw error
            } catch is CancellationError {
                throw CancellationError()
            } catch {
                // The connection broke mid-call: the next call starts with the next endpoint.
                preferred.withLockedValue { $0 = (index + 1) % endpoints.count }
                if Task.isCancelled { throw CancellationError() }
                throw StoreError(.unavailable, operation: operation, key: key, detail: "\(endpoint): \(describe(error))")
            }
        }
        throw StoreError(
            .unavailable, operation: operation, key: key,
            detail: "no etcd endpoint answered: " + failures.joined(separator: "; "))
    }

    /// A connection failure in an operator's words: a refused TLS handshake names the file to check.
    private func describe(_ error: any Error) -> String {
        guard error is NIOSSLError || error is BoringSSLError else { return "\(error)" }
        let text = "\(error)"
        if text.contains("CERTIFICATE_VERIFY_FAILED") {
            let trusted = tls?.caFile.map { "the CA in \($0) (--etcd-cafile)" } ?? "the system's CAs (give --etcd-cafile)"
            return "TLS: etcd's server certificate is not signed by \(trusted): \(text)"
        }
        if ["ALERT_BAD_CERTIFICATE", "ALERT_UNKNOWN_CA", "CERTIFICATE_REQUIRED", "ALERT_HANDSHAKE_FAILURE"]
            .contains(where: text.contains) {
            let mine = tls?.certFile.map { "the client certificate \($0) (--etcd-certfile)" }
                ?? "a connection without a client certificate (give --etcd-certfile and --etcd-keyfile)"
            return "TLS: etcd refused \(mine): \(text)"
        }
        return "TLS: \(text)"
    }

    private func connect(
        _ endpoint: EtcdEndpoint
    ) async throws -> NIOAsyncChannel<HTTPClientResponsePart, HTTPClientRequestPart> {
        let sslContext = self.sslContext
        let (channel, handshake) = try await ClientBootstrap(group: group)
            .connectTimeout(.seconds(3))
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .connect(host: endpoint.host, port: endpoint.port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    var handshake: EventLoopFuture<Void>?
                    if let sslContext {
                        let isAddress = (try? SocketAddress(ipAddress: endpoint.host, port: 0)) != nil
                        let handler = try NIOSSLClientHandler(
                            context: sslContext, serverHostname: isAddress ? nil : endpoint.host)
                        let waiter = TLSHandshakeWaiter(promise: channel.eventLoop.makePromise())
                        handshake = waiter.promise.futureResult
                        try channel.pipeline.syncOperations.addHandlers([handler, waiter])
                    }
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    return (try NIOAsyncChannel<HTTPClientResponsePart, HTTPClientRequestPart>(
                        wrappingChannelSynchronously: channel), handshake)
                }
            }
        do { try await handshake?.get() } catch {
            try? await channel.channel.close()
            throw error
        }
        return channel
    }

    private static func send(
        _ payload: Data, to path: String, endpoint: EtcdEndpoint,
        _ outbound: NIOAsyncChannelOutboundWriter<HTTPClientRequestPart>
    ) async throws {
        var head = HTTPRequestHead(version: .http1_1, method: .POST, uri: path)
        head.headers.add(name: "Host", value: endpoint.description)
        head.headers.add(name: "Content-Type", value: "application/json")
        head.headers.add(name: "Content-Length", value: String(payload.count))
        try await outbound.write(.head(head))
        try await outbound.write(.body(.byteBuffer(ByteBuffer(bytes: payload))))
        try await outbound.write(.end(nil))
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
            // A streaming call's error (`{"error": {"grpc_code": 14, …}}`, e.g. "no leader") with HTTP 503.
            case nil where status == .serviceUnavailable: .unavailable
            default: .backend
            }
        return StoreError(code, operation: operation, key: key, detail: "etcd: HTTP \(status.code): \(message)")
    }
}

/// Fails the connection with the TLS handshake's own error (a wrong CA, a refused client
/// certificate) instead of the "I/O on closed channel" a request would meet afterwards.
private final class TLSHandshakeWaiter: ChannelInboundHandler, RemovableChannelHandler, @unchecked Sendable {
    typealias InboundIn = NIOAny
    let promise: EventLoopPromise<Void>
    /// Only touched on the channel's event loop.
    private var settled = false

    init(promise: EventLoopPromise<Void>) { self.promise = promise }

    private func settle(_ result: Result<Void, any Error>) {
        guard !settled else { return }
        settled = true
        promise.completeWith(result)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case TLSUserEvent.handshakeCompleted = event { settle(.success(())) }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        settle(.failure(error))
        context.fireErrorCaught(error)
    }

    func channelInactive(context: ChannelHandlerContext) {
        settle(.failure(ChannelError.ioOnClosedChannel))
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        settle(.failure(ChannelError.ioOnClosedChannel))
    }
}

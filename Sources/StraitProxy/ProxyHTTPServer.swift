import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix

/// One HTTP answer.
public struct HTTPAnswer: Sendable {
    public var status: HTTPResponseStatus
    public var headers: [(String, String)]
    public var body: String

    public init(status: HTTPResponseStatus = .ok, contentType: String = "text/plain; charset=utf-8",
                body: String, headers: [(String, String)] = []) {
        self.status = status
        self.headers = [("Content-Type", contentType), ("X-Content-Type-Options", "nosniff")] + headers
        self.body = body
    }

    public static let notFound = HTTPAnswer(status: .notFound, body: "404 page not found\n")
}

/// `host:port` to listen on; `[::]:10256` for IPv6.
public struct BindAddress: Sendable, Hashable, CustomStringConvertible {
    public var host: String
    public var port: Int

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    /// `127.0.0.1:10249`, `0.0.0.0:10256`, `[::1]:10249`, or a bare IP with `defaultPort`.
    public init?(parsing text: String, defaultPort: Int) {
        var host = Substring(text)
        var port = defaultPort
        if host.hasPrefix("[") {
            guard let close = host.firstIndex(of: "]") else { return nil }
            let rest = host[host.index(after: close)...]
            host = host[host.index(after: host.startIndex)..<close]
            if !rest.isEmpty {
                guard rest.hasPrefix(":"), let number = Int(rest.dropFirst()) else { return nil }
                port = number
            }
        } else if host.filter({ $0 == ":" }).count == 1, let colon = host.firstIndex(of: ":") {
            guard let number = Int(host[host.index(after: colon)...]) else { return nil }
            port = number
            host = host[..<colon]
        }
        guard !host.isEmpty, (0...65535).contains(port), IPAddressCheck.isIP(String(host)) else { return nil }
        self.host = String(host)
        self.port = port
    }

    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}

enum IPAddressCheck {
    static func isIP(_ text: String) -> Bool { (try? SocketAddress(ipAddress: text, port: 0)) != nil }
}

/// The address could not be bound (in use, not on this host, no permission).
public struct BindError: Error, CustomStringConvertible {
    public var server: String
    public var address: BindAddress
    public var underlying: any Error

    public var description: String { "\(server) server cannot listen on \(address): \(underlying)" }
}

/// A tiny HTTP/1.1 server on SwiftNIO for the proxy's fixed routes (`/proxyMode`, `/metrics`,
/// `/healthz`, `/livez`): GET or HEAD by path, answered synchronously from locked state.
/// A service: `run()` serves until cancelled.
public final class ProxyHTTPServer: Sendable {
    public typealias Responder = @Sendable (_ method: HTTPMethod, _ path: String) -> HTTPAnswer

    public let name: String
    public let address: BindAddress
    private let responder: Responder
    private let channel = NIOLockedValueBox<(any Channel)?>(nil)

    public init(name: String, address: BindAddress, responder: @escaping Responder) {
        self.name = name
        self.address = address
        self.responder = responder
    }

    /// Binds and starts serving; returns the bound port (useful with port 0).
    @discardableResult
    public func start() async throws -> Int {
        if let port = channel.withLockedValue({ $0?.localAddress?.port }) { return port }
        let responder = self.responder
        let bootstrap = ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.backlog, value: 64)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                    try channel.pipeline.syncOperations.addHandler(RouteHandler(responder: responder))
                }
            }
        let bound: any Channel
        do {
            bound = try await bootstrap.bind(host: address.host, port: address.port).get()
        } catch {
            throw BindError(server: name, address: address, underlying: error)
        }
        channel.withLockedValue { $0 = bound }
        return bound.localAddress?.port ?? address.port
    }

    /// Serves until cancelled, then closes the listening socket.
    public func run() async throws {
        try await start()
        guard let bound = channel.withLockedValue({ $0 }) else { return }
        try await withTaskCancellationHandler {
            try await bound.closeFuture.get()
        } onCancel: {
            bound.close(promise: nil)
        }
    }

    public func stop() async {
        let bound = channel.withLockedValue { value in
            defer { value = nil }
            return value
        }
        try? await bound?.close()
    }
}

private final class RouteHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let responder: ProxyHTTPServer.Responder
    private var head: HTTPRequestHead?

    init(responder: @escaping ProxyHTTPServer.Responder) {
        self.responder = responder
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head): self.head = head
        case .body: break
        case .end:
            guard let head else { return }
            self.head = nil
            let path = String(head.uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)[0])
            var answer = head.method == .GET || head.method == .HEAD
                ? responder(head.method, path)
                : HTTPAnswer(status: .methodNotAllowed, body: "method not allowed\n")
            if head.method == .HEAD { answer.body = "" }
            var headers = HTTPHeaders(answer.headers)
            headers.add(name: "Content-Length", value: String(answer.body.utf8.count))
            let keepAlive = head.isKeepAlive
            if !keepAlive { headers.add(name: "Connection", value: "close") }
            context.write(wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: answer.status,
                                                                  headers: headers))), promise: nil)
            var buffer = context.channel.allocator.buffer(capacity: answer.body.utf8.count)
            buffer.writeString(answer.body)
            context.write(wrapOutboundOut(.body(.byteBuffer(buffer))), promise: nil)
            let done = context.writeAndFlush(wrapOutboundOut(.end(nil)))
            if !keepAlive {
                let channel = context.channel
                done.whenComplete { _ in channel.close(promise: nil) }
            }
        }
    }
}

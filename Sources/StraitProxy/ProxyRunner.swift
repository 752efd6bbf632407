import Dispatch
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The whole proxy as one service: the sync loop feeding `backend` from `source`, the metrics
/// server and the health server, started together and stopped together (on cancellation, or
/// SIGTERM/SIGINT when `handleSignals`). The entry point of `strait proxy`:
/// ```swift
/// try await ProxyRunner(config: config, options: options, backend: ProxyModes.backend(…), source: StoreSource(…)).run()
/// ```
public struct ProxyRunner: Sendable {
    public let config: ProxyConfiguration
    /// What the plans depend on, built once from `config` (see `ProxyConfiguration.proxyOptions`).
    public let options: ProxyOptions
    public let backend: any ProxyBackend
    public let source: any ProxySource
    public let metrics: ProxyMetrics
    public let health: ProxyHealth
    public let log: ProxyLog
    public let conntrack: ConntrackCleanup?
    public let handleSignals: Bool

    public init(config: ProxyConfiguration, options: ProxyOptions, backend: any ProxyBackend, source: any ProxySource,
                log: ProxyLog = .standardError(), conntrack: ConntrackCleanup? = ConntrackCleanup(),
                handleSignals: Bool = true) {
        self.config = config
        self.options = options
        self.backend = backend
        self.source = source
        self.log = log
        self.conntrack = conntrack
        self.handleSignals = handleSignals
        metrics = ProxyMetrics()
        health = ProxyHealth(syncPeriod: config.syncPeriod.seconds)
    }

    public func makeSyncLoop() -> SyncLoop {
        SyncLoop(backend: backend, source: source,
                 settings: .init(nodeName: config.nodeName, options: options, minSyncPeriod: config.minSyncPeriod,
                                 syncPeriod: config.syncPeriod),
                 metrics: metrics, health: health, conntrack: conntrack, log: log)
    }

    /// Runs until cancelled or signalled (returns normally), or until a part fails (throws: a
    /// bind failure names the address). `onListening` gets the bound addresses (metrics first,
    /// then health; the real ports when the configuration asked for port 0).
    public func run(onListening: (@Sendable ([BindAddress]) -> Void)? = nil) async throws {
        var servers: [ProxyHTTPServer] = []
        if let address = config.metricsBindAddress {
            servers.append(ProxyHTTPServer(name: "metrics", address: address,
                                           responder: ProxyEndpoints.metrics(mode: backend.mode, metrics: metrics)))
        }
        if let address = config.healthzBindAddress {
            servers.append(ProxyHTTPServer(name: "healthz", address: address,
                                           responder: ProxyEndpoints.health(health, metrics: metrics)))
        }
        // Bind first, so a taken port fails the start before any rule is written.
        var bound: [BindAddress] = []
        for server in servers {
            bound.append(BindAddress(host: server.address.host, port: try await server.start()))
        }
        onListening?(bound)
        log.info("\(backend.mode.rawValue) proxy for node \(config.nodeName); "
                 + zip(servers, bound).map { "\($0.name) on \($1)" }.joined(separator: ", "))
        let loop = makeSyncLoop()
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await loop.run() }
            for server in servers { group.addTask { try await server.run() } }
            if handleSignals {
                group.addTask {
                    let signal = await Self.waitForTermination()
                    self.log.info("signal \(signal): stopping")
                }
            }
            defer { group.cancelAll() }
            try await group.next()
        }
        for server in servers { await server.stop() }
    }

    /// Waits for SIGTERM or SIGINT; returns its number.
    static func waitForTermination() async -> Int32 {
        let sources = TerminationSignals()
        return await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in sources.start(continuation) }
        } onCancel: {
            sources.cancel()
        }
    }
}

/// SIGTERM/SIGINT through Dispatch signal sources, resuming one continuation once.
private final class TerminationSignals: @unchecked Sendable {
    private let queue = DispatchQueue(label: "strait.proxy.signals")
    private var sources: [any DispatchSourceSignal] = []
    private var continuation: CheckedContinuation<Int32, Never>?
    private var cancelled = false

    func start(_ continuation: CheckedContinuation<Int32, Never>) {
        queue.sync {
            if cancelled {
                continuation.resume(returning: 0)
                return
            }
            self.continuation = continuation
            for number in [SIGTERM, SIGINT] {
                signal(number, SIG_IGN)
                let source = DispatchSource.makeSignalSource(signal: number, queue: queue)
                source.setEventHandler { [weak self] in self?.fire(number) }
                source.resume()
                sources.append(source)
            }
        }
    }

    private func fire(_ number: Int32) {
        continuation?.resume(returning: number)
        continuation = nil
    }

    func cancel() {
        queue.sync {
            cancelled = true
            fire(0)
            sources.forEach { $0.cancel() }
            sources = []
        }
    }
}

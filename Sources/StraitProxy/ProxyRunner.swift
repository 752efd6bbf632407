import Logging
import StraitDaemon
import StraitModel

/// The whole proxy: the sync loop feeding `backend` from `source`, the metrics server and the health
/// server, as the parts of one daemon (`Daemon.run`: started together, stopped together on
/// cancellation or, when `handleSignals`, on SIGTERM/SIGINT; a part that fails stops the others).
/// The entry point of `strait proxy`:
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
    public let log: Logger
    public let conntrack: ConntrackCleanup?
    public let handleSignals: Bool
    /// The health check node ports of `externalTrafficPolicy: Local` Services, following each sync.
    public let serviceHealth: ServiceHealthServers

    /// `metrics` are the ones the mode's backends record into too (see `ProxyModes.Settings`); by
    /// default a fresh set for the backend's mode and IPv4. `families`: what the backend programs (the
    /// health JSON has a status per family).
    public init(config: ProxyConfiguration, options: ProxyOptions, backend: any ProxyBackend, source: any ProxySource,
                log: Logger = Logger(label: "strait-proxy"), conntrack: ConntrackCleanup? = ConntrackCleanup(),
                handleSignals: Bool = true, metrics: ProxyMetrics? = nil, families: [IPFamily] = [.ipv4]) {
        self.config = config
        self.options = options
        self.backend = backend
        self.source = source
        self.log = log
        self.conntrack = conntrack
        self.handleSignals = handleSignals
        self.metrics = metrics ?? ProxyMetrics(mode: backend.mode)
        health = ProxyHealth(syncPeriod: config.syncPeriod.seconds, families: families)
        serviceHealth = ServiceHealthServers(nodePortAddresses: options.nodePortAddresses, nodeName: config.nodeName,
                                             health: health, log: log)
    }

    public func makeSyncLoop() -> SyncLoop {
        SyncLoop(backend: backend, source: source,
                 settings: .init(nodeName: config.nodeName, options: options, minSyncPeriod: config.minSyncPeriod,
                                 syncPeriod: config.syncPeriod),
                 metrics: metrics, health: health, conntrack: conntrack, log: log,
                 afterSync: { [serviceHealth] table in await serviceHealth.update(table) })
    }

    /// Runs until cancelled or signalled (returns normally), or until a part fails (throws
    /// `DaemonPartFailure` naming it; a bind failure, before anything runs, names the address).
    /// `onListening` gets the bound addresses (metrics first, then health; the real ports when the
    /// configuration asked for port 0).
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
        // Bind first, so with --bind-address-hard-fail a taken port fails the start before any rule is
        // written; without it (kube-proxy's default) the failure is logged and the server retried every 5 s.
        var bound: [BindAddress] = []
        var retrying: Set<String> = []
        do {
            for server in servers {
                do {
                    bound.append(BindAddress(host: server.address.host, port: try await server.start()))
                } catch let error as BindError where !config.bindAddressHardFail {
                    log.error("\(error); retrying every 5 s (--bind-address-hard-fail is false)")
                    bound.append(server.address)
                    retrying.insert(server.name)
                }
            }
        } catch {
            for server in servers { await server.stop() }
            throw error
        }
        onListening?(bound)
        let listening = zip(servers, bound).map { "\($0.name) on \($1)" }.joined(separator: ", ")
        log.info("\(backend.mode.rawValue) proxy for node \(config.nodeName); \(listening)")
        let loop = makeSyncLoop()
        let retryingServers = retrying
        let parts = [DaemonPart("sync loop") { try await loop.run() }]
            + servers.map { server in
                DaemonPart("\(server.name) server") {
                    if retryingServers.contains(server.name) {
                        try await self.serveRetrying(server)
                    } else {
                        try await server.run()
                    }
                }
            }
        do {
            try await Daemon.run(parts, handleSignals: handleSignals, logger: log)
        } catch {
            for server in servers { await server.stop() }
            await serviceHealth.stop()
            throw error
        }
        for server in servers { await server.stop() }
        await serviceHealth.stop()
    }

    /// Tries to bind `server` every 5 s until it binds, then serves (kube-proxy's soft bind failure).
    private func serveRetrying(_ server: ProxyHTTPServer) async throws {
        while true {
            try await Task.sleep(for: .seconds(5))
            do {
                try await server.start()
            } catch let error as BindError {
                log.debug("\(error)")
                continue
            }
            log.info("\(server.name) server listening on \(server.address)")
            return try await server.run()
        }
    }
}

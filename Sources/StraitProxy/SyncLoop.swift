import Foundation
import Logging
import StraitModel
#if canImport(Glibc)
import Glibc
#endif

/// Feeds a backend: reads the source, keeps the current objects, and programs a fresh
/// `ServiceTable` whenever they change.
///
/// - Nothing is programmed until the source's first `.replaceAll` is in.
/// - A change that arrives alone is programmed at once (`minSyncPeriod` is 0 by default, unlike
///   kube-proxy's 1 s); changes that arrive while a sync runs are merged into the next one, so a
///   burst costs a few syncs, not one per change. A non-zero `minSyncPeriod` spaces sync starts.
/// - Every `syncPeriod` (30 s) a full sync (`from: nil`) rewrites everything; a change of this
///   node's labels forces one too.
/// - A failed sync is retried after `retryDelay`, doubling up to `syncPeriod`; the retry is full.
/// - After each successful sync, stale UDP conntrack entries are deleted (`ConntrackCleanup`).
/// - Metrics and health follow kube-proxy's.
public actor SyncLoop {
    public struct Settings: Sendable {
        public var nodeName: String
        /// What the plans depend on besides the objects.
        public var options: ProxyOptions
        public var minSyncPeriod: Duration
        public var syncPeriod: Duration
        /// The first retry delay after a failure; doubles with each further failure.
        public var retryDelay: Duration

        public init(nodeName: String, options: ProxyOptions = ProxyOptions(), minSyncPeriod: Duration = .zero,
                    syncPeriod: Duration = .seconds(30), retryDelay: Duration = .seconds(1)) {
            self.nodeName = nodeName
            self.options = options
            self.minSyncPeriod = minSyncPeriod
            self.syncPeriod = syncPeriod
            self.retryDelay = retryDelay
        }
    }

    public nonisolated let backend: any ProxyBackend
    public nonisolated let source: any ProxySource
    public nonisolated let settings: Settings
    public nonisolated let metrics: ProxyMetrics
    public nonisolated let health: ProxyHealth
    private let conntrack: ConntrackCleanup?
    private let log: Logger
    private let clock = ContinuousClock()

    private var objects = ProxyObjects()
    private var dirty = false
    private var signalled = false
    private var waiter: CheckedContinuation<Void, Never>?

    /// What the last successful sync programmed.
    public private(set) var programmed: ServiceTable?
    private var lastFullSync: ContinuousClock.Instant?
    private var lastSyncStart: ContinuousClock.Instant?
    private var needFull = true
    private var failures = 0
    private var retryAt: ContinuousClock.Instant?
    private var lastSkipped: [SkippedObject] = []
    /// Successful syncs so far.
    public private(set) var syncCount = 0

    /// `conntrack` nil turns the UDP cleanup off (tests without the tool, or a backend that does it).
    /// `afterSync` gets each successfully programmed table (the health check node ports follow it).
    public init(backend: any ProxyBackend, source: any ProxySource, settings: Settings,
                metrics: ProxyMetrics = ProxyMetrics(), health: ProxyHealth? = nil,
                conntrack: ConntrackCleanup? = ConntrackCleanup(), log: Logger = Logger(label: "strait-proxy"),
                afterSync: (@Sendable (ServiceTable) async -> Void)? = nil) {
        self.backend = backend
        self.source = source
        self.settings = settings
        self.metrics = metrics
        self.health = health ?? ProxyHealth(syncPeriod: settings.syncPeriod.seconds)
        self.conntrack = conntrack
        self.log = log
        self.afterSync = afterSync
    }

    private let afterSync: (@Sendable (ServiceTable) async -> Void)?

    /// Runs until cancelled, or until the source fails or ends.
    public func run() async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await self.consume() }
            group.addTask { await self.loop() }
            try await group.next()
            group.cancelAll()
        }
    }

    private func consume() async throws {
        for try await event in source.events() {
            receive(event)
        }
        if !Task.isCancelled { throw SourceEnded() }
    }

    struct SourceEnded: Error, CustomStringConvertible {
        var description: String { "the proxy's object source ended" }
    }

    private func receive(_ event: ProxySourceEvent) {
        let services = objects.pendingServiceChanges
        let endpoints = objects.pendingEndpointChanges
        let changed = objects.apply(event)
        if event.concernsNodes { health.nodeChanged(objects.nodes[settings.nodeName]) }
        guard changed else { return }
        metrics.changesQueued(services: objects.pendingServiceChanges - services,
                              endpoints: objects.pendingEndpointChanges - endpoints)
        let now = Date()
        metrics.setLastQueued(now)
        health.queued(at: now)
        dirty = true
        signal()
    }

    private func signal() {
        if let waiter {
            self.waiter = nil
            waiter.resume()
        } else {
            signalled = true
        }
    }

    /// Waits for a change, `deadline`, or cancellation.
    private func wait(until deadline: ContinuousClock.Instant?) async {
        // The timer signals only when its sleep ran out: cancelled (the wait ended early), it must not,
        // or its late signal ends the next wait at once and the loop spins, creating a task per turn.
        let timer = deadline.map { deadline in
            Task { [weak self] in
                guard (try? await Task.sleep(until: deadline, clock: .continuous)) != nil else { return }
                await self?.signal()
            }
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                if signalled || Task.isCancelled {
                    signalled = false
                    continuation.resume()
                } else {
                    waiter = continuation
                }
            }
        } onCancel: {
            Task { await self.signal() }
        }
        signalled = false
        timer?.cancel()
    }

    private func loop() async {
        while !objects.hasSynced {
            await wait(until: nil)
            if Task.isCancelled { return }
        }
        while !Task.isCancelled {
            let now = clock.now
            let due: ContinuousClock.Instant
            if let retryAt {
                due = retryAt
            } else if dirty || needFull {
                due = lastSyncStart.map { max(now, $0 + settings.minSyncPeriod) } ?? now
            } else {
                due = (lastFullSync ?? now) + settings.syncPeriod
            }
            if due > now {
                await wait(until: due)
                continue
            }
            await syncOnce()
        }
    }

    private func syncOnce() async {
        let start = clock.now
        let pending = objects.takePending()
        let full = needFull || pending.nodes > 0 || lastFullSync.map { start >= $0 + settings.syncPeriod } ?? true
        dirty = false
        retryAt = nil
        lastSyncStart = start
        metrics.setPending(services: 0, endpoints: 0)

        let result = objects.build(nodeName: settings.nodeName, options: settings.options)
        metrics.observeTableBuild(seconds: (clock.now - start).seconds)
        if result.skipped != lastSkipped {
            for skipped in result.skipped where !lastSkipped.contains(skipped) {
                log.warning("skipping \(skipped.object): \(skipped.reason)")
            }
            lastSkipped = result.skipped
        }

        let previous = programmed
        do {
            try await backend.sync(from: full ? nil : previous, to: result.table)
        } catch {
            failures += 1
            needFull = true
            dirty = true
            objects.restorePending(pending)
            metrics.setPending(services: objects.pendingServiceChanges, endpoints: objects.pendingEndpointChanges)
            metrics.syncFailed()
            let delay = backoff()
            retryAt = clock.now + delay
            log.error("\(backend.mode.rawValue) sync failed (attempt \(failures)), retrying in \(delay.seconds) s: \(error)")
            return
        }
        let elapsed = (clock.now - start).seconds
        let now = Date()
        programmed = result.table
        syncCount += 1
        failures = 0
        needFull = false
        if full {
            lastFullSync = start
            // A full sync frees tens of MB (the restore input, the replaced objects); give them back.
            releaseFreedMemory()
        }
        metrics.observeSync(seconds: elapsed, full: full)
        metrics.setLastSync(now)
        for trigger in pending.triggerTimes {
            metrics.observeNetworkProgramming(seconds: now.timeIntervalSince(trigger))
        }
        health.updated(at: now)
        if dirty { health.queued(at: now) }
        log.debug("\(full ? "full" : "partial") sync of \(result.table.ports.count) service ports in \(elapsed) s")

        metrics.setNoLocalEndpoints(result.table)
        await afterSync?(result.table)

        if let conntrack, let previous {
            // Per family, as kube-proxy's per-family proxiers reconcile and count.
            for family in IPFamily.allCases {
                let cleanupStart = clock.now
                do {
                    let deleted = try await conntrack.clean(from: previous, to: result.table, family: family)
                    metrics.family(family)?.conntrackReconciled(seconds: (clock.now - cleanupStart).seconds,
                                                                deleted: deleted)
                } catch {
                    log.warning("conntrack cleanup: \(error)")
                }
            }
        }
    }

    private func backoff() -> Duration {
        var delay = settings.retryDelay
        for _ in 1..<max(1, failures) where delay < settings.syncPeriod { delay *= 2 }
        return min(delay, settings.syncPeriod)
    }
}

extension ProxySourceEvent {
    /// Whether the event may change a Node (a full list always may).
    var concernsNodes: Bool {
        switch self {
        case .replaceAll: true
        case .upsert(let object): if case .node = object { true } else { false }
        case .delete(let id): id.kind == .node
        }
    }
}

/// Returns the heap's free pages to the system. Equivalent: glibc's `malloc_trim(0)` (looked up at
/// run time: Swift's Glibc module leaves out `malloc.h`; absent on other C libraries, it does nothing).
private func releaseFreedMemory() {
    #if canImport(Glibc)
    typealias MallocTrim = @convention(c) (Int) -> Int32
    guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "malloc_trim") else { return }
    _ = unsafeBitCast(symbol, to: MallocTrim.self)(0)
    #endif
}

extension Duration {
    /// The duration in seconds, as a floating-point number.
    var seconds: Double {
        let (seconds, attoseconds) = components
        return Double(seconds) + Double(attoseconds) / 1e18
    }
}

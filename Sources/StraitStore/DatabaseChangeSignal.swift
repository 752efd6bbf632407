import Dispatch
import NIOConcurrencyHelpers

#if canImport(Glibc)
import Glibc
#endif

/// Wakes a store's watchers when any connection to the database file commits, in this
/// process or another, so that idle watchers cost nothing instead of polling.
///
/// Every writer touches the database file after its commit (`SQLiteStore.announceCommit`),
/// which the kernel reports as an `IN_ATTRIB` event on the file's directory. The touch comes
/// after the commit is visible, so a watcher woken by it always reads the new revision. A counter
/// (`generation`) moves on every event; a watcher reads it before it queries and sleeps until it
/// moves.
///
/// Writes (`IN_MODIFY`) are not watched: a commit appends to the write-ahead log before it is
/// visible, so that wake would find nothing and the touch would wake every watcher again; and
/// every write to any other file in the directory (a log beside the store) would wake every
/// watching process. A writer that does not announce (an older build, the `sqlite3` shell) is
/// seen at the watcher's next recheck instead.
///
/// Equivalent: `inotifywait -m -e attrib,create,moved_to "$(dirname db)"`.
final class DatabaseChangeSignal: @unchecked Sendable {
    private struct State {
        var generation: UInt64 = 0
        var nextWaiter: UInt64 = 0
        var waiters: [UInt64: CheckedContinuation<Void, Never>] = [:]
        /// Waiters whose wait ended (timeout, cancel) before they were registered.
        var settled: Set<UInt64> = []
    }

    private let state = NIOLockedValueBox(State())
    private let queue = DispatchQueue(label: "strait.store.change-signal")
    private let source: DispatchSourceRead?
    private let names: Set<String>

    /// Whether file events arrive; `false` when inotify is unavailable (out of instances,
    /// or not Linux), in which case watchers must poll.
    var isWatching: Bool { source != nil }

    /// Watches `databasePath`'s directory for changes of the database file and its WAL.
    init(databasePath: String) {
        let slash = databasePath.lastIndex(of: "/")
        let directory = slash.map { $0 == databasePath.startIndex ? "/" : String(databasePath[..<$0]) } ?? "."
        let base = slash.map { String(databasePath[databasePath.index(after: $0)...]) } ?? databasePath
        names = [base, base + "-wal", base + "-journal"]
        source = Self.watch(directory: directory, queue: queue)
        source?.setEventHandler { [weak self] in self?.drain() }
        source?.resume()
    }

    deinit { source?.cancel() }

    /// Stops watching; pending waits end at once.
    func stop() {
        source?.cancel()
        bump()
    }

    /// The number of changes seen so far; read it before querying the store.
    var generation: UInt64 { state.withLockedValue { $0.generation } }

    /// Returns once a change after `generation` was seen, `timeout` passed, or the task is
    /// cancelled, whichever is first.
    func wait(after generation: UInt64, timeout: Duration) async {
        let id = state.withLockedValue { state -> UInt64 in
            state.nextWaiter += 1
            return state.nextWaiter
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let ready = state.withLockedValue { state -> Bool in
                    if state.generation != generation || state.settled.remove(id) != nil { return true }
                    state.waiters[id] = continuation
                    return false
                }
                if ready {
                    continuation.resume()
                    return
                }
                let (seconds, attoseconds) = timeout.components
                let nanoseconds = max(0, Int(seconds) * 1_000_000_000 + Int(attoseconds / 1_000_000_000))
                queue.asyncAfter(deadline: .now() + .nanoseconds(nanoseconds)) { [weak self] in
                    self?.settle(id)
                }
            }
        } onCancel: {
            settle(id)
        }
    }

    /// Ends one wait (timeout or cancellation), or marks it ended if not yet registered.
    private func settle(_ id: UInt64) {
        let continuation = state.withLockedValue { state -> CheckedContinuation<Void, Never>? in
            if let continuation = state.waiters.removeValue(forKey: id) { return continuation }
            state.settled.insert(id)
            return nil
        }
        continuation?.resume()
    }

    /// Moves the generation and wakes every waiter.
    private func bump() {
        let woken = state.withLockedValue { state -> [CheckedContinuation<Void, Never>] in
            state.generation &+= 1
            state.settled.removeAll()
            let woken = Array(state.waiters.values)
            state.waiters.removeAll()
            return woken
        }
        for continuation in woken { continuation.resume() }
    }

    #if canImport(Glibc)
    /// Reads every queued event; bumps once if any concerns the database (or the queue overflowed).
    private func drain() {
        guard let source, !source.isCancelled else { return }
        let fd = Int32(source.handle)
        var relevant = false
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count <= 0 { break }
            var offset = 0
            let header = MemoryLayout<inotify_event>.size
            while offset + header <= count {
                let (mask, length) = buffer.withUnsafeBytes { raw in
                    (raw.loadUnaligned(fromByteOffset: offset + 4, as: UInt32.self),
                     Int(raw.loadUnaligned(fromByteOffset: offset + 12, as: UInt32.self)))
                }
                let nameBytes = buffer[(offset + header)..<min(offset + header + length, count)]
                let name = String(decoding: nameBytes.prefix { $0 != 0 }, as: UTF8.self)
                if mask & UInt32(IN_Q_OVERFLOW) != 0 || names.contains(name) { relevant = true }
                offset += header + length
            }
        }
        if relevant { bump() }
    }

    private static func watch(directory: String, queue: DispatchQueue) -> DispatchSourceRead? {
        let fd = inotify_init1(Int32(IN_NONBLOCK | IN_CLOEXEC))
        guard fd >= 0 else { return nil }
        let mask = UInt32(IN_ATTRIB | IN_CREATE | IN_MOVED_TO)
        guard inotify_add_watch(fd, directory, mask) >= 0 else {
            close(fd)
            return nil
        }
        let source = DispatchSource.makeReadSource(fileDescriptor: fd, queue: queue)
        source.setCancelHandler { close(fd) }
        return source
    }
    #else
    private func drain() {}
    private static func watch(directory: String, queue: DispatchQueue) -> DispatchSourceRead? { nil }
    #endif
}

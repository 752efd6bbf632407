import Foundation
import Testing

@testable import StraitStore

/// The two store implementations the contract suite runs against.
enum StoreKind: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case sqlite
    case etcd

    var testDescription: String { rawValue }
}

/// Runs `body` with a fresh store of `kind` and a key prefix unique to the test.
/// SQLite: a new file in a temporary directory. etcd: the suite's shared server, or
/// `server` when given (tests that compact or restart etcd need their own).
func withStore<T>(
    _ kind: StoreKind, server: EtcdServer? = nil, _ body: (any Store, String) async throws -> T
) async throws -> T {
    let prefix = "/strait-test/\(UUID().uuidString.prefix(8))/"
    switch kind {
    case .sqlite:
        let directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("strait-store-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let store = try await SQLiteStore(path: directory.appendingPathComponent("store.db").path)
        do {
            let result = try await body(store, prefix)
            await store.close()
            return result
        } catch {
            await store.close()
            throw error
        }
    case .etcd:
        let server = try #require(server ?? EtcdServer.shared, "no etcd server: run inside the .sharedEtcd suite")
        let store = try EtcdStore(endpoints: [server.endpoint])
        return try await body(store, prefix)
    }
}

extension String {
    var bytes: Data { Data(utf8) }
}

/// Consumes a watch stream in the background and records each event with its arrival
/// time, so tests can wait for what they expect with a generous deadline.
actor WatchRecorder {
    private(set) var events: [WatchEvent] = []
    private(set) var arrivals: [ContinuousClock.Instant] = []
    private(set) var failure: (any Error)?
    private(set) var ended = false
    private var task: Task<Void, Never>?

    static func start(_ stream: AsyncThrowingStream<WatchEvent, Error>) async -> WatchRecorder {
        let recorder = WatchRecorder()
        await recorder.consume(stream)
        return recorder
    }

    private func consume(_ stream: AsyncThrowingStream<WatchEvent, Error>) {
        task = Task {
            do {
                for try await event in stream { self.record(event) }
            } catch {
                self.fail(error)
            }
            self.end()
        }
    }

    private func record(_ event: WatchEvent) {
        events.append(event)
        arrivals.append(.now)
    }

    private func fail(_ error: any Error) { failure = error }
    private func end() { ended = true }

    /// Waits until `predicate` holds for the events so far; fails after `timeout`
    /// (a deadline against hangs, not a timing assertion).
    @discardableResult
    func wait(
        timeout: Duration = .seconds(30), _ what: String, until predicate: ([WatchEvent]) -> Bool
    ) async throws -> [WatchEvent] {
        let deadline = ContinuousClock.now + timeout
        while !predicate(events) {
            if let failure { throw TestFailure("watch failed while waiting for \(what): \(failure)") }
            if ended { throw TestFailure("watch ended while waiting for \(what); got \(events)") }
            guard ContinuousClock.now < deadline else {
                throw TestFailure("no \(what) within \(timeout); got \(events)")
            }
            try await Task.sleep(for: .milliseconds(2))
        }
        return events
    }

    func waitForEnd(timeout: Duration = .seconds(30)) async throws {
        let deadline = ContinuousClock.now + timeout
        while !ended {
            guard ContinuousClock.now < deadline else { throw TestFailure("watch did not end; got \(events)") }
            try await Task.sleep(for: .milliseconds(2))
        }
    }

    func stop() {
        task?.cancel()
    }
}

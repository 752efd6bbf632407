import InMemoryLogging
import Logging
import StraitDaemon
import Synchronization
import Testing

/// `Daemon.run`: parts start together and stop together; the first part that fails or ends stops
/// the others, and its failure names it, in the error and in the log. (SIGTERM is exercised on the
/// built `strait proxy`, in `ProxySignalTests`.)
@Suite struct DaemonTests {
    struct Boom: Error, CustomStringConvertible {
        var description: String { "boom" }
    }

    /// Counts the parts that were stopped by cancellation (they saw it and returned).
    final class Stops: Sendable {
        private let count = Mutex(0)
        var value: Int { count.withLock { $0 } }
        func part(_ name: String) -> DaemonPart {
            DaemonPart(name) { [self] in
                do {
                    while true { try await Task.sleep(for: .seconds(3600)) }
                } catch {
                    count.withLock { $0 += 1 }
                    throw error
                }
            }
        }
    }

    @Test func aFailingPartStopsTheOthersAndIsNamed() async throws {
        let handler = InMemoryLogHandler()
        let logger = Logger(label: "test") { _ in handler }
        let stops = Stops()
        let parts = [stops.part("sync loop"), DaemonPart("metrics server") { throw Boom() }, stops.part("healthz server")]
        do {
            try await Daemon.run(parts, handleSignals: false, logger: logger)
            Issue.record("the daemon ran on after a part failed")
        } catch let failure as DaemonPartFailure {
            #expect(failure.part == "metrics server")
            #expect(failure.underlying is Boom)
            #expect("\(failure)" == "metrics server failed: boom")
        }
        #expect(stops.value == 2)
        #expect(handler.entries.contains { $0.level == .error && "\($0.message)" == "metrics server failed: boom" })
    }

    @Test func aPartThatEndsOnItsOwnIsAFailure() async throws {
        let stops = Stops()
        let parts = [stops.part("sync loop"), DaemonPart("overlay agent") {}]
        let logger = Logger(label: "test") { _ in SwiftLogNoOpLogHandler() }
        await #expect(throws: DaemonPartFailure.self) {
            try await Daemon.run(parts, handleSignals: false, logger: logger)
        }
        do {
            try await Daemon.run([DaemonPart("overlay agent") {}], handleSignals: false, logger: logger)
        } catch {
            #expect("\(error)" == "overlay agent failed: it ended on its own")
        }
        #expect(stops.value == 1)
    }

    @Test func cancellingTheCallerStopsEveryPartWithoutAnError() async throws {
        let stops = Stops()
        let (started, markStarted) = AsyncStream<Void>.makeStream()
        let parts = [stops.part("sync loop"), stops.part("metrics server"),
                     DaemonPart("marker") {
                         markStarted.yield()
                         while true { try await Task.sleep(for: .seconds(3600)) }
                     }]
        let logger = Logger(label: "test") { _ in SwiftLogNoOpLogHandler() }
        let task = Task { try await Daemon.run(parts, handleSignals: false, logger: logger) }
        var iterator = started.makeAsyncIterator()
        _ = await iterator.next()
        task.cancel()
        try await task.value
        #expect(stops.value == 2)
    }
}

import Foundation
import Logging
import StraitDaemon
import Synchronization
import Testing

/// The one line format of `strait proxy` and `strait overlay`, and kube-proxy's `--v` levels.
@Suite struct DaemonLogHandlerTests {
    final class Lines: Sendable {
        private let lines = Mutex<[String]>([])
        var all: [String] { lines.withLock { $0 } }
        func logger(level: Logger.Level) -> Logger {
            Logger(label: "strait-proxy") { label in
                DaemonLogHandler(label: label, logLevel: level) { line in self.lines.withLock { $0.append(line) } }
            }
        }
    }

    @Test func aLineHasTimeComponentLevelAndTheMessageUnchanged() throws {
        let lines = Lines()
        let logger = lines.logger(level: .info)
        logger.warning("skipping default/web: no ports")
        logger.info("synced", metadata: ["ports": "3"])
        logger.debug("not shown at info")
        #expect(lines.all.count == 2)
        let first = try #require(lines.all.first)
        let pattern = #/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z strait-proxy warning: skipping default/web: no ports\n$/#
        #expect(first.wholeMatch(of: pattern) != nil, "\(first)")
        #expect(lines.all.last?.hasSuffix(" strait-proxy info: synced ports=3\n") == true)
    }

    @Test func verbosityFollowsKubeProxysV() {
        #expect(DaemonLogging.level(verbosity: 0) == .info)
        #expect(DaemonLogging.level(verbosity: 1) == .info)
        #expect(DaemonLogging.level(verbosity: 2) == .debug)
        #expect(DaemonLogging.level(verbosity: 9) == .debug)
        let lines = Lines()
        lines.logger(level: DaemonLogging.level(verbosity: 2)).debug("full sync of 3 service ports")
        #expect(lines.all.count == 1)
    }
}

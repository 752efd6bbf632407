import Logging
import StraitDaemon

extension Logger {
    /// A logger that drops every line, for tests that check behaviour, not the log.
    static let silent = Logger(label: "test") { _ in SwiftLogNoOpLogHandler() }

    /// A logger that hands every line, debug included, in the daemons' format to `record`, for tests
    /// that check what was logged.
    static func recording(_ record: @escaping @Sendable (String) -> Void) -> Logger {
        Logger(label: "test") { label in DaemonLogHandler(label: label, logLevel: .debug, write: record) }
    }
}

import Logging

extension Logger {
    /// A logger that drops every line, for tests that check behaviour, not the log.
    static let silent = Logger(label: "test") { _ in SwiftLogNoOpLogHandler() }
}

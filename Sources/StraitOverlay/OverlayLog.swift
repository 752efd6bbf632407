import Foundation

/// One line per event on standard error, with a UTC timestamp: what the agent did and why.
enum OverlayLog {
    static func info(_ message: String) { write("info", message) }
    static func warning(_ message: String) { write("warning", message) }
    static func error(_ message: String) { write("error", message) }

    private static func write(_ level: String, _ message: String) {
        let line = "\(Date().formatted(.iso8601.time(includingFractionalSeconds: true))) overlay \(level): \(message)\n"
        FileHandle.standardError.write(Data(line.utf8))
    }
}

import Foundation
import Logging
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The one line format of Strait's daemons (`strait proxy`, `strait overlay`) on standard error:
/// `2026-12-01T12:46:17.123Z strait-proxy info: message key=value`. Time, component and
/// severity first, as kube-proxy's klog lines carry them; the message unchanged.
public struct DaemonLogHandler: LogHandler {
    public let label: String
    public var logLevel: Logger.Level
    public var metadata: Logger.Metadata = [:]
    /// Where a finished line goes; standard error unless a test records the lines.
    private let write: @Sendable (String) -> Void

    public init(label: String, logLevel: Logger.Level = .info,
                write: @escaping @Sendable (String) -> Void = DaemonLogHandler.standardError) {
        self.label = label
        self.logLevel = logLevel
        self.write = write
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var line = "\(Self.timestamp(Date())) \(label) \(event.level): \(event.message)"
        let merged = metadata.merging(event.metadata ?? [:]) { _, new in new }
        for (key, value) in merged.sorted(by: { $0.key < $1.key }) { line += " \(key)=\(value)" }
        if let error = event.error { line += " error=\(error)" }
        write(line + "\n")
    }

    /// One `write(2)` per line, so lines from several tasks never interleave.
    public static let standardError: @Sendable (String) -> Void = { line in
        line.utf8CString.withUnsafeBufferPointer { buffer in
            _ = systemWrite(2, buffer.baseAddress, buffer.count - 1)
        }
    }

    /// RFC 3339 in UTC with milliseconds: `2026-12-01T12:46:17.123Z`.
    static func timestamp(_ date: Date) -> String {
        date.formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: true))
    }
}

/// The `strait` executable's one swift-log bootstrap: every logger, Strait's and its libraries',
/// writes `DaemonLogHandler` lines on standard error.
public enum DaemonLogging {
    /// kube-proxy's `--v`: 0 and 1 log info and above, 2 and above add debug.
    public static func level(verbosity: Int) -> Logger.Level {
        verbosity >= 2 ? .debug : .info
    }

    /// Call once per process, before the first logger is made.
    public static func bootstrap(verbosity: Int) {
        let level = level(verbosity: verbosity)
        LoggingSystem.bootstrap { label in DaemonLogHandler(label: label, logLevel: level) }
    }
}

#if canImport(Glibc)
private let systemWrite = Glibc.write
#elseif canImport(Musl)
private let systemWrite = Musl.write
#endif

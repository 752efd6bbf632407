#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Where the proxy's core writes what it did and what it skipped. A closure rather than a logging
/// framework so the core stays free of one; `strait proxy` passes its own (swift-log, `-v`).
public struct ProxyLog: Sendable {
    public enum Level: Int, Sendable, Comparable {
        case error, warning, info, debug
        public static func < (a: Level, b: Level) -> Bool { a.rawValue < b.rawValue }
    }

    public let write: @Sendable (Level, String) -> Void

    public init(_ write: @escaping @Sendable (Level, String) -> Void) {
        self.write = write
    }

    /// Lines on standard error up to `level`: `strait-proxy warning: …`.
    public static func standardError(level: Level = .info) -> ProxyLog {
        ProxyLog { messageLevel, message in
            guard messageLevel <= level else { return }
            let line = "strait-proxy \(messageLevel): \(message)\n"
            _ = line.withCString { Glibc.write(2, $0, strlen($0)) }
        }
    }

    public static let silent = ProxyLog { _, _ in }

    public func error(_ message: String) { write(.error, message) }
    public func warning(_ message: String) { write(.warning, message) }
    public func info(_ message: String) { write(.info, message) }
    public func debug(_ message: String) { write(.debug, message) }
}

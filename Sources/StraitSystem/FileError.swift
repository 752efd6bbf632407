#if canImport(Glibc)
import Glibc
#endif

/// A failed file system call: which call, on which path, and errno.
public struct FileError: Error, Sendable, CustomStringConvertible {
    public let operation: String
    public let path: String
    public let errno: Int32

    public init(operation: String, path: String, errno: Int32) {
        self.operation = operation
        self.path = path
        self.errno = errno
    }

    public var description: String { "\(operation) \(path): \(String(cString: strerror(errno)))" }
}

/// Runs a file system call, retrying on EINTR; a negative result becomes a `FileError`.
@discardableResult
public func fileCall(_ operation: String, _ path: String, _ call: () -> Int32) throws(FileError) -> Int32 {
    while true {
        let result = call()
        if result >= 0 { return result }
        if errno == EINTR { continue }
        throw FileError(operation: operation, path: path, errno: errno)
    }
}

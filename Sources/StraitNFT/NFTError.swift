#if canImport(Glibc)
import Glibc
#endif

/// A failed nftables operation: what was attempted on which object, and the kernel's reason.
/// Prints like `add rule to chain nat-output in table ip strait: No such file or directory`.
public struct NFTError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What was attempted, naming the object: `add rule to chain nat-output in table ip strait`.
    public var operation: String
    /// The kernel's errno (positive), or 0 when the value was refused before reaching the kernel.
    public var errno: Int32
    /// Extra detail: an invalid value, or the kernel's extended ack message.
    public var detail: String?

    public init(operation: String, errno: Int32, detail: String? = nil) {
        self.operation = operation
        self.errno = errno
        self.detail = detail
    }

    /// A value that cannot be encoded; `operation` is filled in by whoever knows the object.
    static func invalid(_ what: String) -> NFTError {
        NFTError(operation: "encode value", errno: EINVAL, detail: "invalid \(what)")
    }

    public var description: String {
        var text = "\(operation): "
        if let detail { text += detail } else { text += String(cString: strerror(errno)) }
        return text
    }
}

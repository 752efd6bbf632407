#if canImport(Glibc)
import Glibc
#endif
import StraitSystem

/// Running code inside a named network namespace without moving any other thread (through
/// StraitSystem's `NamespaceThread`, the one such helper), with failures as `NetlinkError`.
public enum NetworkNamespace {
    /// The file that pins a network namespace: `/run/netns/NAME` for a bare name, or `reference`
    /// itself when it is an absolute path (`/proc/PID/ns/net`, a CNI runtime's `CNI_NETNS`).
    public static func path(of reference: String) -> String { NamespaceThread.path(of: reference) }

    /// Runs `body` on a dedicated thread inside the namespace `name` and returns its result.
    /// The calling thread waits; its own namespace never changes. Throws `NetlinkError` when the
    /// namespace cannot be opened or entered, and rethrows what `body` throws.
    /// Equivalent: `ip netns exec NAME …`, for a closure.
    public static func run<T>(named name: String, _ body: () throws -> T) throws -> T {
        do {
            return try NamespaceThread.run(in: name, body)
        } catch let failure as NamespaceThread.Failure {
            throw NetlinkError(operation: failure.operation, object: failure.path, code: .system, errno: failure.errno)
        }
    }

    /// `run(named:)` on the calling thread, which returns to its own namespace after `body`
    /// (`NamespaceThread.runOnCallingThread`: for a one-shot program of one thread).
    public static func runOnCallingThread<T>(named name: String, _ body: () throws -> T) throws -> T {
        do {
            return try NamespaceThread.runOnCallingThread(in: name, body)
        } catch let failure as NamespaceThread.Failure {
            throw NetlinkError(operation: failure.operation, object: failure.path, code: .system, errno: failure.errno)
        }
    }

    /// Opens the namespace file for `reference` (see `path(of:)`); the caller closes it.
    static func open(_ reference: String) throws(NetlinkError) -> Int32 {
        let descriptor = Glibc.open(path(of: reference), O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else {
            throw NetlinkError(operation: "open network namespace", object: path(of: reference),
                               code: .system, errno: errno)
        }
        return descriptor
    }
}

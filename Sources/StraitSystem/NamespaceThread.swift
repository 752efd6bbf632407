#if canImport(Glibc)
import Glibc
#endif
import CSystemShim

/// Runs code inside a network namespace without moving any other thread: the work runs on a
/// dedicated thread that joins the namespace with `setns(2)` and then ends, so the change dies
/// with it. The caller's thread, and every Swift task thread, stay where they were; a socket made
/// on that thread (netlink, a listener) keeps the namespace for life.
/// The one such helper: StraitNetlink and StraitNFT call it and wrap its failure in their errors.
public enum NamespaceThread {
    /// Why the namespace could not be entered (the body's own errors are rethrown as they are).
    public struct Failure: Error, Sendable, CustomStringConvertible {
        /// "open network namespace", "enter network namespace" or "start namespace thread".
        public var operation: String
        public var path: String
        public var errno: Int32

        public var description: String { "\(operation) \(path): \(String(cString: strerror(errno)))" }
    }

    /// The file that pins a network namespace: `/run/netns/NAME` for a bare name, or `reference`
    /// itself when it is an absolute path (`/proc/PID/ns/net`, a CNI runtime's `CNI_NETNS`).
    public static func path(of reference: String) -> String {
        reference.hasPrefix("/") ? reference : "/run/netns/\(reference)"
    }

    /// Runs `body` on a dedicated thread inside the namespace `reference` (a name or a path) and
    /// returns its result; the calling thread waits. Throws `Failure` when the namespace cannot be
    /// opened or entered, and rethrows what `body` throws.
    /// Equivalent: `ip netns exec NAME …`, for a closure.
    public static func run<T>(in reference: String, _ body: () throws -> T) throws -> T {
        let path = path(of: reference)
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { throw Failure(operation: "open network namespace", path: path, errno: errno) }
        defer { close(descriptor) }
        var outcome: Result<T, any Error>?
        try withoutActuallyEscaping(body) { body in
            let work = ThreadWork {
                if strait_sys_enter_network_namespace(descriptor) != 0 {
                    outcome = .failure(Failure(operation: "enter network namespace", path: path, errno: errno))
                } else {
                    outcome = Result { try body() }
                }
            }
            // The thread borrows `work`; pthread_join below keeps everything it touches alive.
            let context = Unmanaged.passRetained(work).toOpaque()
            var thread = pthread_t()
            let created = pthread_create(&thread, nil, { context in
                Unmanaged<ThreadWork>.fromOpaque(context!).takeRetainedValue().run()
                return nil
            }, context)
            guard created == 0 else {
                Unmanaged<ThreadWork>.fromOpaque(context).release()
                throw Failure(operation: "start namespace thread", path: path, errno: created)
            }
            pthread_join(thread, nil)
        }
        return try outcome!.get()
    }
}

/// The closure a namespace thread runs. Unchecked Sendable: the caller blocks in `pthread_join`
/// while the thread runs it, so the two never touch the captured state at the same time.
private final class ThreadWork: @unchecked Sendable {
    let run: () -> Void
    init(_ run: @escaping () -> Void) { self.run = run }
}

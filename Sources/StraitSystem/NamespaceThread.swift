#if canImport(Glibc)
import Glibc
#endif
import CSystemShim

/// Runs code inside a network namespace without moving any other thread: the work runs on a
/// dedicated thread that joins the namespace with `setns(2)` and then ends, so the change dies
/// with it. The caller's thread, and every Swift task thread, stay where they were; a socket made
/// on that thread (netlink, a listener) keeps the namespace for life.
/// The one such helper: StraitNetlink and StraitNFT call it and wrap its failure in their errors.
/// A one-shot program of one thread (strait-cni) may instead visit the namespace on its own thread
/// (`runOnCallingThread`): no thread to start and wait for.
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
            // The thread borrows `body` and `outcome`; pthread_join below keeps both alive meanwhile.
            let started = JoinableThread.start {
                if strait_sys_enter_network_namespace(descriptor) != 0 {
                    outcome = .failure(Failure(operation: "enter network namespace", path: path, errno: errno))
                } else {
                    outcome = Result { try body() }
                }
            }
            switch started {
            case .success(let thread): pthread_join(thread, nil)
            case .failure(let failure):
                throw Failure(operation: "start namespace thread", path: path, errno: failure.errno)
            }
        }
        return try outcome!.get()
    }
}

extension NamespaceThread {
    /// Runs `body` on the calling thread inside the namespace `reference`, then returns the thread to
    /// its own namespace. For a one-shot program of one thread, where handing the work to a new thread
    /// costs a thread's start and, on a busy node, a wait for a CPU twice (there, then back), which is
    /// most of what entering a namespace costs. `body` must not suspend: an `async` task could move to
    /// another thread while this one is in the namespace. Should the thread fail to return, the process
    /// ends (`fatalError`): every socket it made next would be in the wrong namespace.
    /// Throws `Failure` when the namespace cannot be opened or entered, and rethrows what `body` throws.
    /// Equivalent: `ip netns exec NAME …`, for a closure, as the reference CNI plugins' `ns.Do` does it.
    public static func runOnCallingThread<T>(in reference: String, _ body: () throws -> T) throws -> T {
        let path = path(of: reference)
        var home = strait_sys_open_current_network_namespace()
        if home < 0 { home = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC) }
        guard home >= 0 else {
            throw Failure(operation: "open network namespace", path: "/proc/thread-self/ns/net", errno: errno)
        }
        defer { close(home) }
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { throw Failure(operation: "open network namespace", path: path, errno: errno) }
        defer { close(descriptor) }
        guard strait_sys_enter_network_namespace(descriptor) == 0 else {
            throw Failure(operation: "enter network namespace", path: path, errno: errno)
        }
        defer {
            if strait_sys_enter_network_namespace(home) != 0 {
                fatalError("cannot return to this thread's own network namespace from \(path): "
                           + String(cString: strerror(errno)))
            }
        }
        return try body()
    }
}

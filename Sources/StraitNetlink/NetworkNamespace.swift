#if canImport(Glibc)
import Glibc
#endif
import CNetlinkShim

/// Running code inside a named network namespace without moving any other thread.
///
/// The work runs on a dedicated thread that joins the namespace with `setns(2)` and then ends, so
/// the namespace change dies with it: the caller's thread, and every Swift task thread, stay where
/// they were. Anything created on that thread that is bound to a namespace (a netlink socket, a
/// listening socket) keeps that namespace after the thread is gone.
public enum NetworkNamespace {
    /// The file that pins a network namespace: `/run/netns/NAME` for a bare name, or `reference`
    /// itself when it is an absolute path (`/proc/PID/ns/net`, a CNI runtime's `CNI_NETNS`).
    public static func path(of reference: String) -> String {
        reference.hasPrefix("/") ? reference : "/run/netns/\(reference)"
    }

    /// Runs `body` on a dedicated thread inside the namespace `name` and returns its result.
    /// The calling thread waits; its own namespace never changes. Throws `NetlinkError` when the
    /// namespace cannot be opened or entered, and rethrows what `body` throws.
    /// Equivalent: `ip netns exec NAME …`, for a closure.
    public static func run<T>(named name: String, _ body: () throws -> T) throws -> T {
        let descriptor = try open(name)
        defer { close(descriptor) }
        return try run(descriptor: descriptor, name: name, body)
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

    private static func run<T>(descriptor: Int32, name: String, _ body: () throws -> T) throws -> T {
        var outcome: Result<T, any Error>?
        try withoutActuallyEscaping(body) { body in
            let work = ThreadWork {
                if strait_nl_enter_network_namespace(descriptor) != 0 {
                    outcome = .failure(NetlinkError(operation: "enter network namespace", object: name,
                                                    code: .system, errno: errno))
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
                throw NetlinkError(operation: "start namespace thread", object: name, code: .system, errno: created)
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

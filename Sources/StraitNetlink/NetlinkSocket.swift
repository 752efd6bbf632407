#if canImport(Glibc)
import Glibc
#endif
import CNetlink
import Synchronization

/// An open netlink socket: one `nl_sock`, reused for every request so no call pays for a new socket
/// or a cache refill. Requests are serialised by a lock, so a socket may be shared between tasks.
///
/// A socket stays in the network namespace it was created in; `NetlinkSocket(namespace:)` creates
/// it there, after which it works from any thread.
public final class NetlinkSocket: @unchecked Sendable {
    /// The netlink protocol a socket speaks.
    public enum Family: Sendable {
        /// `NETLINK_ROUTE`: links, addresses, routes, neighbours.
        case route
        /// `NETLINK_GENERIC`: families such as IPVS, resolved by name.
        case generic
    }

    // Unchecked Sendable because every use of `handle` and `kernelErrno` happens under `lock`.
    private let handle: OpaquePointer
    /// Where the error callback writes the kernel's errno of the last failed request.
    private let kernelErrno: UnsafeMutablePointer<Int32>
    private let lock = Mutex(())
    public let family: Family

    /// Opens a socket in the calling thread's network namespace or, given `namespace`, inside that
    /// namespace (a name under `/run/netns`, or an absolute path such as `/proc/PID/ns/net`). There the
    /// socket is created on a short-lived thread that joined the namespace, or with `onCallingThread`
    /// on the calling thread, which then returns to its own (for a one-shot program of one thread:
    /// `NamespaceThread.runOnCallingThread`); the socket keeps the namespace.
    /// Equivalent: the socket `ip -n NAME …` (route) or `genl` (generic) opens.
    public init(_ family: Family = .route, namespace: String? = nil, onCallingThread: Bool = false) throws {
        self.family = family
        if let namespace {
            let connect = { try HandleBox(Self.connect(family)) }
            handle = try onCallingThread
                ? NetworkNamespace.runOnCallingThread(named: namespace, connect).handle
                : NetworkNamespace.run(named: namespace, connect).handle
        } else {
            handle = try Self.connect(family)
        }
        kernelErrno = .allocate(capacity: 1)
        kernelErrno.initialize(to: 0)
        // libnl folds the kernel's errno into its own coarser codes; record the original as well.
        let callbacks = nl_socket_get_cb(handle)
        nl_cb_err(callbacks, NL_CB_CUSTOM, recordKernelError, UnsafeMutableRawPointer(kernelErrno))
        nl_cb_put(callbacks)
    }

    private static func connect(_ family: Family) throws(NetlinkError) -> OpaquePointer {
        guard let handle = nl_socket_alloc() else {
            throw NetlinkError(operation: "allocate netlink socket", object: "\(family)", code: .system, errno: ENOMEM)
        }
        let connected = switch family {
        case .route: nl_connect(handle, NETLINK_ROUTE)
        case .generic: genl_connect(handle)
        }
        if connected < 0 {
            nl_socket_free(handle)
            throw NetlinkError(operation: "connect netlink socket", object: "\(family)",
                               code: .init(rawValue: -connected))
        }
        return handle
    }

    deinit {
        nl_socket_free(handle)
        kernelErrno.deallocate()
    }

    /// The one door to the kernel: runs `body` with the socket under the lock and turns a negative
    /// libnl return into a `NetlinkError` naming `operation`, `object` and the kernel's errno.
    @discardableResult
    func call(_ operation: String, _ object: @autoclosure () -> String,
              _ body: (OpaquePointer) -> Int32) throws(NetlinkError) -> Int32 {
        try lock.withLock { _ throws(NetlinkError) -> Int32 in
            kernelErrno.pointee = 0
            let result = body(handle)
            if result >= 0 { return result }
            let errno = kernelErrno.pointee
            throw NetlinkError(operation: operation, object: object(), code: .init(rawValue: -result),
                               errno: errno == 0 ? nil : errno)
        }
    }
}

/// Carries a freshly connected `nl_sock` out of the namespace thread; nothing else holds it.
private struct HandleBox: @unchecked Sendable {
    let handle: OpaquePointer
    init(_ handle: OpaquePointer) { self.handle = handle }
}

/// libnl's error callback: keeps the kernel's errno, then lets libnl fail the request as usual.
private func recordKernelError(_ peer: UnsafeMutablePointer<sockaddr_nl>?, _ error: UnsafeMutablePointer<nlmsgerr>?,
                               _ context: UnsafeMutableRawPointer?) -> Int32 {
    if let error, let context {
        context.assumingMemoryBound(to: Int32.self).pointee = abs(error.pointee.error)
    }
    return Int32(NL_STOP.rawValue)
}

/// The one door for libnl calls that do not touch a socket (parsing, setting attributes on objects).
@discardableResult
func netlink(_ operation: String, _ object: @autoclosure () -> String,
             _ result: Int32) throws(NetlinkError) -> Int32 {
    if result >= 0 { return result }
    throw NetlinkError(operation: operation, object: object(), code: .init(rawValue: -result))
}

/// Unwraps a libnl allocation, which fails only when memory runs out. `what` is spelled only then.
func allocated(_ pointer: OpaquePointer?, _ what: @autoclosure () -> String) throws(NetlinkError) -> OpaquePointer {
    guard let pointer else { throw NetlinkError(operation: "allocate", object: what(), code: .system, errno: ENOMEM) }
    return pointer
}

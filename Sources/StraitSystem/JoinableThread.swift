#if canImport(Glibc)
import Glibc
#endif

/// A POSIX thread started to run one closure, joined by whoever started it. For work that must
/// have a thread of its own (a namespace visit, which must not move any other thread) and for
/// strait-cni, which links neither Dispatch nor Swift's concurrency runtime.
public enum JoinableThread {
    /// Starts a thread running `body`; returns it, or `pthread_create`'s error number. The caller
    /// joins it (`pthread_join`) before it reads what `body` wrote.
    public static func start(_ body: @escaping () -> Void) -> Result<pthread_t, StartFailure> {
        // The thread owns one reference to `body`'s box, taken here and dropped when it ends.
        let context = Unmanaged.passRetained(Body(body)).toOpaque()
        var thread = pthread_t()
        let created = pthread_create(&thread, nil, { context in
            Unmanaged<Body>.fromOpaque(context!).takeRetainedValue().run()
            return nil
        }, context)
        guard created == 0 else {
            Unmanaged<Body>.fromOpaque(context).release()
            return .failure(StartFailure(errno: created))
        }
        return .success(thread)
    }

    /// Why a thread could not be started: `pthread_create`'s error number (EAGAIN: no resources).
    public struct StartFailure: Error, Sendable {
        public var errno: Int32
    }

    /// The closure a thread runs. Unchecked Sendable: its starter joins the thread before touching
    /// what the closure captured, so the two never use it at the same time.
    private final class Body: @unchecked Sendable {
        let run: () -> Void
        init(_ run: @escaping () -> Void) { self.run = run }
    }
}

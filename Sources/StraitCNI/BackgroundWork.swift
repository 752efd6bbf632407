#if canImport(Glibc)
import Glibc
#endif

/// Work started at once on another thread, whose result is collected later with `wait()`.
/// strait-cni is a short synchronous process; this lets file and kernel work overlap. A plain POSIX
/// thread, not Dispatch: linking Dispatch into strait-cni runs its set-up (two sysfs reads, CPU
/// affinity) at every exec, for every pod.
final class BackgroundWork<Value: Sendable>: @unchecked Sendable {
    private let work: @Sendable () throws(CNIError) -> Value
    private var outcome: Result<Value, CNIError>?
    private var thread: pthread_t?

    /// Starts `work` on a new thread; if no thread can be started, `wait()` runs it on the caller's.
    init(_ work: @escaping @Sendable () throws(CNIError) -> Value) {
        self.work = work
        thread = ThreadBody.start { self.outcome = Result { () throws(CNIError) in try work() } }
    }

    /// The work's result; may be called more than once.
    func wait() throws(CNIError) -> Value {
        if let thread {
            pthread_join(thread, nil)
            self.thread = nil
        }
        if outcome == nil { outcome = Result { () throws(CNIError) in try work() } }
        return try outcome!.get()
    }
}

/// The closure a background thread runs. Unchecked Sendable: its owner joins the thread before it reads
/// what the closure wrote.
private final class ThreadBody: @unchecked Sendable {
    let run: () -> Void
    init(_ run: @escaping () -> Void) { self.run = run }

    /// A new joinable thread running `run`, or nil when none can be started.
    static func start(_ run: @escaping () -> Void) -> pthread_t? {
        let context = Unmanaged.passRetained(ThreadBody(run)).toOpaque()
        var thread = pthread_t()
        let created = pthread_create(&thread, nil, { context in
            Unmanaged<ThreadBody>.fromOpaque(context!).takeRetainedValue().run()
            return nil
        }, context)
        guard created == 0 else {
            Unmanaged<ThreadBody>.fromOpaque(context).release()
            return nil
        }
        return thread
    }
}

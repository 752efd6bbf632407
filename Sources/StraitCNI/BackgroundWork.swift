#if canImport(Glibc)
import Glibc
#endif
import StraitSystem

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
        thread = try? JoinableThread.start { self.outcome = Result { () throws(CNIError) in try work() } }.get()
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

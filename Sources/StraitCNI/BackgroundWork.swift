import Dispatch

/// Work started at once on another thread, whose result is collected later with `wait()`.
/// strait-cni is a short synchronous process; this lets file and kernel work overlap.
final class BackgroundWork<Value: Sendable>: @unchecked Sendable {
    private var outcome: Result<Value, CNIError>?
    private let done = DispatchSemaphore(value: 0)
    private var collected = false

    init(_ work: @escaping @Sendable () throws(CNIError) -> Value) {
        DispatchQueue.global().async {
            do throws(CNIError) { self.outcome = .success(try work()) } catch { self.outcome = .failure(error) }
            self.done.signal()
        }
    }

    /// The work's result; may be called more than once.
    func wait() throws(CNIError) -> Value {
        if !collected {
            done.wait()
            collected = true
        }
        return try outcome!.get()
    }
}

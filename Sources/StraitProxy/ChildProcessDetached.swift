import Dispatch
import StraitSystem

extension ChildProcess {
    /// `run` on a thread of its own, not one of Swift's cooperative pool: a child that takes seconds
    /// (a 40 MB `iptables-restore`) then blocks no task of the process while it runs. It lives here,
    /// beside the daemon's parts, not in StraitSystem: strait-cni links StraitSystem, and Swift
    /// concurrency and Dispatch linked into it would run their set-up at every exec.
    public static func runDetached(_ arguments: [String], stdin: [[UInt8]] = [],
                                   wholeInputFirst: Bool = false) async throws(SpawnError) -> Output {
        let result: Result<Output, SpawnError> = await withCheckedContinuation { continuation in
            detachedQueue.async {
                continuation.resume(returning: Result { () throws(SpawnError) in
                    try run(arguments, stdin: stdin, wholeInputFirst: wholeInputFirst)
                })
            }
        }
        return try result.get()
    }

    /// Where `runDetached` children are waited for (Dispatch threads, apart from Swift's pool).
    private static let detachedQueue = DispatchQueue(label: "strait.child-process", attributes: .concurrent)
}

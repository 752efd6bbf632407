#if canImport(Glibc)
import Glibc
#endif
import StraitModel

// strait-bench WORKLOAD ARGS…: runs one timed workload and prints `seconds=<elapsed>` on its last line.
// scripts/bench runs these beside the reference tools (ip -batch, nft -f, …) and compares.
let arguments = Array(CommandLine.arguments.dropFirst())
guard let workload = arguments.first, let run = benchWorkloads[workload] else {
    print("usage: strait-bench \(benchWorkloads.keys.sorted().joined(separator: "|")) ARGS…")
    exit(2)
}
do {
    try await run(Array(arguments.dropFirst()))
} catch {
    print("strait-bench \(workload): \(error)")
    exit(1)
}

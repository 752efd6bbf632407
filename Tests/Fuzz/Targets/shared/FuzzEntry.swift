#if canImport(Glibc)
import Glibc
#endif

/// An input a parser mishandled: what it returned that it must not have.
struct FuzzViolation: Error, CustomStringConvertible {
    var description: String

    init(_ description: String) { self.description = description }
}

/// Fails with `message` unless `condition` holds: an invariant of the parser under fuzz.
func require(_ condition: @autoclosure () -> Bool, _ message: @autoclosure () -> String) throws(FuzzViolation) {
    if !condition() { throw FuzzViolation(message()) }
}

// This file is shared (linked) by every fuzz target; each defines `FuzzTarget.check(_:)`.

#if STRAIT_LIBFUZZER
/// libFuzzer's entry: a crash or an invariant violation stops the run, and libFuzzer keeps the
/// input as `crash-<sha1>`. Only in the fuzz build: every target defines this C symbol, and the
/// normal build links all of them into the test bundle.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ start: UnsafeRawPointer?, _ count: Int) -> CInt {
    let bytes = start.map { Array(UnsafeRawBufferPointer(start: $0, count: count)) } ?? []
    do {
        try FuzzTarget.check(bytes)
    } catch {
        fatalError("invariant violated: \(error)")
    }
    return 0
}
#else
/// Without libFuzzer (a normal `swift build`) the target replays files: `fuzz-cni FILE…` checks each
/// and names each that fails (exit 1 then).
@main
enum FuzzReplay {
    static func main() {
        var failed = false
        for path in CommandLine.arguments.dropFirst() {
            guard let file = fopen(path, "rb") else {
                printError("cannot open \(path): \(String(cString: strerror(errno)))")
                exit(2)
            }
            var bytes: [UInt8] = []
            var buffer = [UInt8](repeating: 0, count: 65536)
            while true {
                let count = fread(&buffer, 1, buffer.count, file)
                if count == 0 { break }
                bytes += buffer[0..<count]
            }
            fclose(file)
            do {
                try FuzzTarget.check(bytes)
            } catch {
                printError("\(path): \(error)")
                failed = true
            }
        }
        exit(failed ? 1 : 0)
    }

    static func printError(_ text: String) {
        var line = text + "\n"
        line.withUTF8 { _ = write(2, $0.baseAddress, $0.count) }
    }
}
#endif

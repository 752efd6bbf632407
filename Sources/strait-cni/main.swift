#if canImport(Glibc)
import Glibc
#endif
import StraitCNI
import StraitModel
import StraitSystem

// strait-cni: the CNI plugin. A runtime drives it through CNI_COMMAND and stdin; by hand it answers
// --help and --version. The runtime starts it for every pod, so it reads argv and the environment
// in place (not `CommandLine.arguments` or a dictionary of every variable: both cost this short
// process more than its kernel work); see BENCHMARKS.md, "CNI ADD against the kernel floor".

/// True when one of the command-line arguments is one of `flags`.
func hasArgument(_ flags: String...) -> Bool {
    (1..<Int(CommandLine.argc)).contains { index in
        guard let argument = CommandLine.unsafeArgv[index] else { return false }
        return flags.contains { strcmp(argument, $0) == 0 }
    }
}

if hasArgument("--version") {
    print("strait-cni \(StraitVersion.current)")
    exit(0)
}
if hasArgument("--help", "-h") {
    print("""
    strait-cni \(StraitVersion.current): the Strait CNI plugin (CNI spec 1.1).
    A container runtime runs it with CNI_COMMAND (ADD, DEL, CHECK, STATUS, GC, VERSION) and the network
    configuration on stdin. See cni/README.md.
    """)
    exit(0)
}

/// Everything on stdin (the network configuration). The buffer is one page: a configuration rarely
/// fills it, and every page more is a page fault more at each exec.
func readStandardInput() -> [UInt8] {
    var bytes: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 4096)
    while true {
        let count = read(0, &buffer, buffer.count)
        if count > 0 { bytes.append(contentsOf: buffer[0..<count]) } else if count == 0 || errno != EINTR { break }
    }
    return bytes
}

/// Writes `text` and a newline to stdout with write(2) (what `print` prints, without its `Any` boxes
/// and stdio buffer).
func writeLine(_ text: String) {
    var line = text + "\n"
    line.withUTF8 { bytes in try? writeAll(1, UnsafeRawBufferPointer(bytes), path: "standard output") }
}

/// The environment variable `name`, read in place. A function rather than a closure in this top-level code: such a
/// closure would be isolated to the main actor, checked at each call, and that check links Swift's concurrency
/// runtime (and Dispatch) into strait-cni, whose set-up then runs at every exec.
func environmentVariable(_ name: String) -> String? {
    getenv(name).map { String(cString: $0) }
}

let outcome = CNIPlugin.run(variable: environmentVariable, stdin: readStandardInput())
if !outcome.stdout.isEmpty { writeLine(outcome.stdout) }
exit(outcome.status)

#if canImport(Glibc)
import Glibc
#endif
import StraitCNI
import StraitModel

// strait-cni: the CNI plugin. A runtime drives it through CNI_COMMAND and stdin; by hand it answers
// --help and --version.
let arguments = CommandLine.arguments.dropFirst()
if arguments.contains("--version") {
    print("strait-cni \(StraitVersion.current)")
    exit(0)
}
if arguments.contains("--help") || arguments.contains("-h") {
    print("""
    strait-cni \(StraitVersion.current): the Strait CNI plugin (CNI spec 1.1).
    A container runtime runs it with CNI_COMMAND (ADD, DEL, CHECK, STATUS, GC, VERSION) and the network
    configuration on stdin. See cni/README.md.
    """)
    exit(0)
}

/// Everything on stdin (the network configuration).
func readStandardInput() -> [UInt8] {
    var bytes: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 65536)
    while true {
        let count = read(0, &buffer, buffer.count)
        if count > 0 { bytes.append(contentsOf: buffer[0..<count]) } else if count == 0 || errno != EINTR { break }
    }
    return bytes
}

var environment: [String: String] = [:]
var entry = environ
while let pointer = entry.pointee {
    let pair = String(cString: pointer)
    if let equals = pair.firstIndex(of: "=") {
        environment[String(pair[..<equals])] = String(pair[pair.index(after: equals)...])
    }
    entry += 1
}
let outcome = CNIPlugin.run(environment: environment, stdin: readStandardInput())
if !outcome.stdout.isEmpty { print(outcome.stdout) }
exit(outcome.status)

import StraitModel

// strait-cni: the CNI plugin. The runtime drives it through CNI_COMMAND; by hand it answers --help and --version.
let arguments = CommandLine.arguments.dropFirst()
if arguments.contains("--version") {
    print("strait-cni \(StraitVersion.current)")
} else {
    print("""
    strait-cni \(StraitVersion.current): the Strait CNI plugin (CNI spec 1.1).
    A container runtime runs it with CNI_COMMAND (ADD, DEL, CHECK, STATUS, GC, VERSION) and the network
    configuration on stdin. See cni/README.md.
    """)
}

import Foundation
import StraitTestSupport
import Testing

/// `strait-cni` is executed for every pod: it links none of the daemon libraries `strait` uses
/// (swift-log, swift-metrics, swift-prometheus, swift-service-lifecycle). Read from the symbol
/// tables of the built executables; `strait` shows the check can see them.
@Suite struct LeanCNITests {
    /// Mangled-name prefixes of one type of each library: `Logging.Logger`, `CoreMetrics.Counter`,
    /// `Prometheus.PrometheusCollectorRegistry`, `ServiceLifecycle.ServiceGroup`.
    static let daemonLibraries = ["$s7Logging6LoggerV", "$s11CoreMetrics7CounterC",
                                  "$s10Prometheus0A17CollectorRegistryC", "$s16ServiceLifecycle0A5GroupC"]

    /// cni/static-link/strait-cni.order (this file is Tests/StraitCLITests/LeanCNITests.swift).
    static let orderFile = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("cni/static-link/strait-cni.order").path

    func symbols(_ executable: String) throws -> String {
        try Command.run(["nm", builtProduct(executable)])
    }

    @Test func cniLinksNoDaemonLibrary() throws {
        let cni = try symbols("strait-cni")
        let strait = try symbols("strait")
        for fragment in Self.daemonLibraries {
            #expect(strait.contains(fragment), "strait should link \(fragment)")
            #expect(!cni.contains(fragment), "strait-cni links \(fragment)")
        }
    }

    /// No dynamic loader at all (Package.swift, cni/static-link/strait-cni-ld): strait-cni is a static executable
    /// at a fixed address, with no interpreter, no dynamic section and so no shared library to find, map, relocate
    /// or bind at its start; the libmnl functions it calls are its own (CNetlinkMessages). `strait`, linked the usual
    /// way, shows the check can see each of them.
    @Test func cniIsAStaticExecutable() throws {
        func linkView(_ executable: String) throws -> String {
            try Command.run(["readelf", "--file-header", "--program-headers", "--dynamic", builtProduct(executable)])
        }
        let cni = try linkView("strait-cni")
        let strait = try linkView("strait")
        for library in ["libnl-3.so", "libnl-route-3.so", "libnftnl.so", "libmnl.so", "libc.so"] {
            #expect(strait.contains(library), "strait should load \(library)")
            #expect(!cni.contains(library), "strait-cni loads \(library)")
        }
        #expect(strait.contains("INTERP") && !cni.contains("INTERP"), "strait-cni asks for a dynamic loader")
        #expect(strait.contains("Dynamic section at offset") && cni.contains("There is no dynamic section"),
                "strait-cni has a dynamic section")
        #expect(strait.contains("DYN (Position-Independent Executable file)"))
        #expect(cni.contains("EXEC (Executable file)"), "strait-cni is not a fixed-address executable")

        let definedSymbols = try Command.run(["nm", "--defined-only", builtProduct("strait-cni")])
        for function in ["mnl_socket_open", "mnl_nlmsg_batch_next", "mnl_attr_parse", "mnl_cb_run"] {
            #expect(definedSymbols.contains(" T \(function)\n"), "strait-cni does not define \(function)")
        }
    }

    /// Swift's concurrency runtime, Dispatch and the string-processing (regex) libraries stay out of strait-cni:
    /// linked in, their set-up ran at every exec (Dispatch reads sysfs twice and the CPU affinity) and their
    /// conformance records lengthened every protocol lookup. One use anywhere in the modules strait-cni links
    /// (an `async` function, a closure isolated to the main actor, `String.contains(String)`) brings them back.
    /// `strait` uses each, and shows the check can see them.
    @Test func cniLinksNoConcurrencyDispatchOrRegexRuntime() throws {
        let cni = try symbols("strait-cni")
        let strait = try symbols("strait")
        for fragment in [" swift_task_create\n", "$s8Dispatch", "$s17_StringProcessing"] {
            #expect(strait.contains(fragment), "strait should refer to \(fragment)")
            #expect(!cni.contains(fragment), "strait-cni links \(fragment)")
        }
        for fragment in ["libdispatch_init", "$s12_RegexParser"] {
            #expect(!cni.contains(fragment), "strait-cni links \(fragment)")
        }
    }

    /// strait-cni defines the runtime's argv look-up itself (Sources/CRuntimeStart), so the runtime's own
    /// CommandLine.cpp, whose static constructor reads /proc/self/maps at every start, is not linked: its
    /// constructor's symbol is absent, and strait-cni still reads its arguments (VersionAndHelpTests).
    @Test func cniStartsWithoutTheRuntimesArgumentScan() throws {
        let cni = try symbols("strait-cni")
        #expect(cni.contains(" T _swift_stdlib_getUnsafeArgvArgc\n"), "strait-cni does not define the argv look-up")
        #expect(!cni.contains("_GLOBAL__sub_I_CommandLine.cpp"), "strait-cni links the runtime's CommandLine.cpp")
        let started = try Command.output([builtProduct("strait-cni"), "--version"])
        #expect(started.status == 0 && started.stdout.hasPrefix("strait-cni "), "--version: \(started.stdout)")
    }

    /// strait-cni's linker lays out first the functions a runtime's commands run (cni/static-link/strait-cni.order,
    /// written by scripts/cni-order), so an ADD touches a few contiguous pages of text rather than pages spread over
    /// all of it. Read from the built executable: the functions the file names that this build defines lie mostly in
    /// the file's order, and nine in ten of them in the first half of the text. Linked in the objects' own order (no
    /// order file, or lld's call-graph sort left on, which silently overrides it), half of the neighbours in the file
    /// are in order, as by chance, and nine in ten of the functions spread over 90% of the text.
    @Test func cniLaysOutItsCommandsFunctionsFirst() throws {
        let order = try String(contentsOfFile: Self.orderFile, encoding: .utf8)
        var functions: [String: UInt64] = [:]
        for line in try Command.run(["nm", "--defined-only", builtProduct("strait-cni")]).split(separator: "\n") {
            let fields = line.split(separator: " ")
            guard fields.count == 3, fields[1] == "T" || fields[1] == "t", let address = UInt64(fields[0], radix: 16)
            else { continue }
            functions[String(fields[2])] = address
        }
        let placed = order.split(separator: "\n").compactMap { functions[String($0)] }
        #expect(placed.count >= 300, "only \(placed.count) functions of strait-cni.order are defined in strait-cni")
        guard placed.count >= 10, let textStart = functions.values.min(), let textEnd = functions.values.max() else {
            return
        }
        let inOrder = zip(placed, placed.dropFirst()).filter { $0 < $1 }.count
        #expect(Double(inOrder) / Double(placed.count - 1) >= 0.7,
                "\(inOrder) of \(placed.count - 1) neighbours in strait-cni.order are laid out in its order")
        let spread = (placed.sorted()[placed.count * 9 / 10] - textStart) >> 10, text = (textEnd - textStart) >> 10
        #expect(spread < text / 2, "nine in ten ordered functions spread over \(spread) KiB of \(text) KiB of text")
    }
}

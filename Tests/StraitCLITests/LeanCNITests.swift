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
}

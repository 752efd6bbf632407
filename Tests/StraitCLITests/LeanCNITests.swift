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

    /// What the dynamic loader does at every exec (cni/static-link/strait-cni-ld, Package.swift): libnl
    /// and libnftnl are linked in from their archives, only libmnl (no archive in Debian) and libc's
    /// own stay shared; no RUNPATH to probe; an executable at a fixed address, not PIE. `strait`,
    /// linked the usual way, shows the check can see each of them.
    @Test func cniLoadsOnlyLibmnlAndLibcAtStart() throws {
        func dynamicSection(_ executable: String) throws -> String {
            try Command.run(["readelf", "-d", "-h", builtProduct(executable)])
        }
        let cni = try dynamicSection("strait-cni")
        let strait = try dynamicSection("strait")
        for library in ["libnl-3.so", "libnl-route-3.so", "libnl-genl-3.so", "libnftnl.so"] {
            #expect(strait.contains(library), "strait should load \(library)")
            #expect(!cni.contains(library), "strait-cni loads \(library)")
        }
        #expect(cni.contains("libmnl.so"))
        #expect(strait.contains("RUNPATH") && !cni.contains("RUNPATH"), "strait-cni has a RUNPATH")
        #expect(strait.contains("DYN (Position-Independent Executable file)"))
        #expect(cni.contains("EXEC (Executable file)"), "strait-cni is not a fixed-address executable")
    }
}

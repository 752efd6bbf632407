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
}

import ArgumentParser
import Foundation
import Logging
import StraitDaemon
import StraitModel
import StraitProxy
import StraitProxyIPTables
import StraitProxyModes
import StraitSources

/// `strait proxy`: the kube-proxy replacement. Flags are named as kube-proxy's; `--config` reads a
/// KubeProxyConfiguration first and flags given on the command line override it. It builds the
/// mode's backend and hands it, with the store as the source, to `ProxyRunner`.
struct ProxyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "proxy",
        abstract: "Program Services into the kernel, as kube-proxy does (iptables mode).")

    @Option(name: .customLong("proxy-mode"), help: "iptables (nftables and ipvs are not available yet).")
    var proxyMode: String?

    @Option(name: .customLong("hostname-override"), help: "The node name (default: the host name).")
    var hostnameOverride: String?

    @Option(name: .customLong("cluster-cidr"), help: "Pod CIDRs, comma-separated; ClusterIP traffic from outside them is masqueraded.")
    var clusterCIDR: String?

    @Option(name: .customLong("nodeport-addresses"), help: "CIDRs, comma-separated: NodePorts answer only on local addresses inside them (default: all).")
    var nodePortAddresses: String?

    @Flag(name: .customLong("masquerade-all"), help: "Masquerade all traffic to ClusterIPs.")
    var masqueradeAll = false

    @Option(name: .customLong("min-sync-period"), help: "Least time between syncs, as a Go duration (default 0s: a lone change is programmed at once).")
    var minSyncPeriod: String?

    @Option(name: .customLong("sync-period"), help: "Time between full syncs, as a Go duration (default 30s).")
    var syncPeriod: String?

    @Option(name: .customLong("metrics-bind-address"), help: "Address of /metrics and /proxyMode (default 127.0.0.1:10249; \"\" disables).")
    var metricsBindAddress: String?

    @Option(name: .customLong("healthz-bind-address"), help: "Address of /healthz and /livez (default 0.0.0.0:10256; \"\" disables).")
    var healthzBindAddress: String?

    @Option(help: "A KubeProxyConfiguration YAML file.")
    var config: String?

    @Flag(help: "Remove every rule Strait made, then exit.")
    var cleanup = false

    @Option(name: .customLong("iptables-backend"),
            help: "nft or legacy iptables binaries (default $STRAIT_IPTABLES_BACKEND, else what `iptables` is on this host).")
    var iptablesBackend: String?

    @Option(name: .short, help: "Log verbosity (0 info, 2 and above debug).")
    var v: Int = 0

    @OptionGroup var storeOptions: ObjectStoreOptions

    func run() async throws {
        var configuration = ProxyConfiguration()
        if let config {
            guard let text = try? String(contentsOfFile: config, encoding: .utf8) else {
                throw ValidationError("cannot read --config \(config)")
            }
            let (loaded, warnings) = try ProxyConfiguration.load(yaml: text)
            configuration = loaded
            for warning in warnings { FileHandle.standardError.write(Data("warning: \(config): \(warning)\n".utf8)) }
        }
        try apply(to: &configuration)
        DaemonLogging.bootstrap(verbosity: v)
        let log = Logger(label: "strait-proxy")

        let options = try configuration.proxyOptions(nodeIPs: NodeAddresses.local())
        let flavor = try flavor()
        let families = ProxyModes.hostFamilies()
        let metrics = ProxyMetrics(mode: configuration.mode, families: families)
        let backend = try ProxyModes.backend(configuration.mode, .init(
            options: options, families: families, iptablesFlavor: flavor, metrics: metrics))
        if cleanup {
            try await backend.cleanup()
            log.info("removed every rule Strait made (\(configuration.mode.rawValue) mode, \(flavor) iptables)")
            return
        }
        log.info("\(configuration.mode.rawValue) mode through the \(flavor) binaries")
        let store = try await storeOptions.open()
        let runner = ProxyRunner(config: configuration, options: options, backend: backend,
                                 source: StoreSource(store: store.store, log: log), log: log, metrics: metrics)
        do {
            try await runner.run()
        } catch {
            await store.close()
            // A failed part is logged already, naming it.
            if error is DaemonPartFailure { throw ExitCode.failure }
            throw error
        }
        await store.close()
    }

    /// Command-line flags override the configuration file.
    private func apply(to configuration: inout ProxyConfiguration) throws {
        if let proxyMode {
            switch proxyMode {
            case "": configuration.mode = .iptables
            default:
                guard let mode = ProxyMode(rawValue: proxyMode) else {
                    throw ValidationError("--proxy-mode \(proxyMode): unknown mode (iptables, nftables, ipvs)")
                }
                configuration.mode = mode
            }
        }
        if let hostnameOverride { configuration.hostnameOverride = hostnameOverride }
        if let clusterCIDR { configuration.clusterCIDRs = try ProxyConfiguration.parseCIDRs(clusterCIDR) }
        if let nodePortAddresses {
            configuration.nodePortAddresses = nodePortAddresses.split(separator: ",").map { String($0) }
        }
        if masqueradeAll { configuration.masqueradeAll = true }
        if let minSyncPeriod { configuration.minSyncPeriod = try duration(minSyncPeriod, "--min-sync-period") }
        if let syncPeriod { configuration.syncPeriod = try duration(syncPeriod, "--sync-period") }
        if let metricsBindAddress {
            configuration.metricsBindAddress = try ProxyConfiguration.parseBindAddress(
                metricsBindAddress, defaultPort: 10249, field: "--metrics-bind-address")
        }
        if let healthzBindAddress {
            configuration.healthzBindAddress = try ProxyConfiguration.parseBindAddress(
                healthzBindAddress, defaultPort: 10256, field: "--healthz-bind-address")
        }
    }

    private func duration(_ text: String, _ flag: String) throws -> Duration {
        guard let value = GoDuration.parse(text) else { throw ValidationError("\(flag) \(text): not a duration (like 30s, 1m)") }
        return value
    }

    private func flavor() throws -> IPTablesFlavor {
        guard let name = iptablesBackend ?? ProcessInfo.processInfo.environment["STRAIT_IPTABLES_BACKEND"], !name.isEmpty else {
            return .hostDefault()
        }
        guard let flavor = IPTablesFlavor(rawValue: name) else {
            throw ValidationError("--iptables-backend \(name): expected nft or legacy")
        }
        return flavor
    }
}

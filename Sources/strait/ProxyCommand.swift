import ArgumentParser
import Foundation
import Logging
import StraitDaemon
import StraitModel
import StraitNetlink
import StraitProxy
import StraitProxyIPTables
import StraitProxyModes
import StraitSources

/// `strait proxy`: the kube-proxy replacement. It takes kube-proxy's command line
/// (`KubeProxyFlags`: every kube-proxy flag, those Strait does not implement with a warning) and
/// kube-proxy's `--config` precedence, sets the conntrack sysctls, builds the mode's backend and
/// hands it, with the store as the source, to `ProxyRunner`.
struct ProxyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "proxy",
        abstract: "Program Services into the kernel, as kube-proxy does (iptables, nftables or ipvs mode).",
        discussion: """
            kube-proxy's flags, as kube-proxy takes them (--flag=value, --flag value, --bool, --bool=false, -v=N).
            With --config the file gives every setting, except --hostname-override and -v (kube-proxy's rule).

            \(KubeProxyFlags.helpText())
            """)

    @Argument(parsing: .allUnrecognized, help: "kube-proxy's flags (listed below).")
    var kubeProxyFlags: [String] = []

    @Option(name: .customLong("iptables-backend"),
            help: "nft or legacy iptables binaries (default $STRAIT_IPTABLES_BACKEND, else what `iptables` is on this host).")
    var iptablesBackend: String?

    @OptionGroup var storeOptions: ObjectStoreOptions

    @OptionGroup var kubeOptions: KubeOptions

    func run() async throws {
        let flags: KubeProxyFlags.Parsed
        do {
            flags = try KubeProxyFlags.parse(kubeProxyFlags)
        } catch {
            throw ValidationError("\(error)")
        }
        var configuration = ProxyConfiguration()
        var warnings = flags.warnings
        let configFile = flags.value("config")
        if let configFile {
            guard let text = try? String(contentsOfFile: configFile, encoding: .utf8) else {
                throw ValidationError("--config \(configFile): cannot read the file")
            }
            do {
                let (loaded, fileWarnings) = try ProxyConfiguration.load(yaml: text)
                configuration = loaded
                warnings += fileWarnings.map { "\(configFile): \($0)" }
            } catch {
                throw ValidationError("--config \(configFile): \(error)")
            }
        }
        do {
            warnings += try flags.apply(to: &configuration, configFileGiven: configFile != nil)
            _ = try configuration.proxyOptions(nodeIPs: [])
        } catch {
            throw ValidationError("\(error)")
        }
        DaemonLogging.bootstrap(verbosity: configuration.verbosity)
        let log = Logger(label: "strait-proxy")
        for warning in warnings { log.warning("\(warning)") }

        if let path = flags.value("write-config-to") {
            do {
                try configuration.kubeProxyConfigurationYAML().write(toFile: path, atomically: true, encoding: .utf8)
            } catch {
                throw ValidationError("--write-config-to \(path): \(error.localizedDescription)")
            }
            log.info("wrote the configuration to \(path)")
            return
        }

        let options = try configuration.proxyOptions(nodeIPs: NodeAddresses.local())
        let flavor = try flavor()
        let families = ProxyModes.hostFamilies()
        let metrics = ProxyMetrics(mode: configuration.mode, families: families)
        let settings = ProxyModes.Settings(
            options: options, families: families, iptablesFlavor: flavor,
            ipvsScheduler: configuration.ipvsScheduler, ipvsStrictARP: configuration.ipvsStrictARP,
            ipvsTimeouts: IPVSTimeouts(tcp: configuration.ipvsTCPTimeout, tcpFin: configuration.ipvsTCPFinTimeout,
                                       udp: configuration.ipvsUDPTimeout),
            namespace: nil, masqueradeBit: configuration.masqueradeBit, metrics: metrics)
        if flags.bool("cleanup") {
            // Every mode's leftovers, whatever mode is configured (as kube-proxy's --cleanup).
            let removed = try await ProxyCleanup.run(settings)
            log.info("removed every rule Strait made: \(removed.joined(separator: ", "))")
            return
        }
        let backend = try ProxyModes.backend(configuration.mode, settings)
        try ConntrackSysctls(settings: configuration.conntrack, log: log).apply()
        if flags.bool("init-only") {
            log.info("--init-only: the one-time set-up is done")
            return
        }
        log.info("\(configuration.mode.rawValue) mode through the \(flavor) binaries")
        if let source = try kubeOptions.source(configuration, storeFlag: storeOptions.store, log: log) {
            let runner = ProxyRunner(config: configuration, options: options, backend: backend, source: source,
                                     log: log, metrics: metrics, families: families)
            // Until every first list is in, nothing is programmed: the proxy is not healthy.
            runner.health.failUntilFirstSync()
            do {
                try await runner.run()
            } catch {
                await source.client.shutdown()
                // A failed part is logged already, naming it.
                if error is DaemonPartFailure { throw ExitCode.failure }
                throw error
            }
            await source.client.shutdown()
            return
        }
        let store = try await storeOptions.open()
        let runner = ProxyRunner(config: configuration, options: options, backend: backend,
                                 source: StoreSource(store: store.store, log: log), log: log, metrics: metrics,
                                 families: families)
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

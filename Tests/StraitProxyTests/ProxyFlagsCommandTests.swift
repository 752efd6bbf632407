import Foundation
import StraitTestSupport
import Testing

/// `strait proxy`'s kube-proxy command line through the built binary: pflag syntax, warnings for
/// flags Strait does not implement, kube-proxy's `--config` precedence, `--write-config-to`,
/// `--init-only` in a namespace, and bad input refused with the flag named.
@Suite(.serialized) struct ProxyFlagsCommandTests {
    let strait = builtProduct("strait")

    func temporaryDirectory() throws -> String {
        let path = NSTemporaryDirectory() + "strait-flags-\(getpid())-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    @Test func helpListsKubeProxysFlags() throws {
        let help = try Command.output([strait, "proxy", "--help"])
        #expect(help.succeeded)
        for flag in ["--iptables-masquerade-bit", "--conntrack-max-per-core", "--init-only", "--write-config-to",
                     "--bind-address-hard-fail", "--feature-gates", "--ipvs-scheduler", "--detect-local-mode"] {
            #expect(help.stdout.contains(flag), "\(flag)")
        }
    }

    @Test func writeConfigToShowsFlagsAndWarnsAboutTheRest() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let out = dir + "/effective.yaml"
        let result = try Command.output([
            strait, "proxy", "--masquerade-all=true", "--iptables-masquerade-bit", "12", "--v=3",
            "--iptables-sync-period=45s", "--conntrack-tcp-timeout-established=2h", "--cluster-cidr=10.244.0.0/16",
            "--feature-gates=SomeGate=true", "--profiling", "--oom-score-adj=-998", "--ipvs-sync-period=10s",
            "--ipvs-tcp-timeout=10s",
            "--detect-local-mode=NodeCIDR", "--iptables-localhost-nodeports=false",
            "--hostname-override", "Node-1", "--write-config-to=\(out)"])
        #expect(result.succeeded, "\(result.stderr)")
        #expect(!result.stderr.contains("--iptables-localhost-nodeports"), "\(result.stderr)")
        for flag in ["--feature-gates", "--profiling", "--oom-score-adj", "--ipvs-sync-period", "--detect-local-mode=NodeCIDR"] {
            #expect(result.stderr.contains("\(flag) is accepted but not implemented"), "\(flag): \(result.stderr)")
        }
        let yaml = try String(contentsOfFile: out, encoding: .utf8)
        for line in ["kind: KubeProxyConfiguration", "  masqueradeAll: true", "  masqueradeBit: 12", "  syncPeriod: 45s",
                     "  tcpEstablishedTimeout: 2h0m0s", "clusterCIDR: 10.244.0.0/16", "hostnameOverride: node-1",
                     "  verbosity: 3", "  tcpTimeout: 10s"] {
            #expect(yaml.contains(line + "\n"), "\(line)")
        }
    }

    /// kube-proxy's rule, measured with v1.36.2: the file wins over flags, except
    /// --hostname-override and -v.
    @Test func configFileWinsOverFlagsExceptHostnameAndVerbosity() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let config = dir + "/config.conf", out = dir + "/effective.yaml"
        try """
            apiVersion: kubeproxy.config.k8s.io/v1alpha1
            kind: KubeProxyConfiguration
            clientConnection:
              qps: 5
            clusterCIDR: 10.244.0.0/16
            iptables:
              masqueradeAll: false
              syncPeriod: 10s
            ipvs:
              scheduler: ""
            mode: ""
            """.write(toFile: config, atomically: true, encoding: .utf8)
        let result = try Command.output([
            strait, "proxy", "--config=\(config)", "--hostname-override=FromFlag", "--masquerade-all=true",
            "--cluster-cidr=10.9.0.0/16", "-v=4", "--write-config-to=\(out)"])
        #expect(result.succeeded, "\(result.stderr)")
        let yaml = try String(contentsOfFile: out, encoding: .utf8)
        #expect(yaml.contains("hostnameOverride: fromflag\n") && yaml.contains("  verbosity: 4\n"))
        #expect(yaml.contains("  masqueradeAll: false\n") && yaml.contains("clusterCIDR: 10.244.0.0/16\n"))
        #expect(yaml.contains("  syncPeriod: 10s\n"))
        #expect(result.stderr.contains("--masquerade-all is ignored") && result.stderr.contains("--cluster-cidr is ignored"))
        // Fields at kube-proxy's defaults ask for nothing Strait lacks: no warning about them.
        #expect(!result.stderr.contains("clientConnection") && !result.stderr.contains("ipvs"), "\(result.stderr)")

        // What Strait wrote reads back to the same file.
        let again = dir + "/again.yaml"
        let reread = try Command.output([strait, "proxy", "--config", out, "--write-config-to", again])
        #expect(reread.succeeded && !reread.stderr.contains("warning"), "\(reread.stderr)")
        #expect(try String(contentsOfFile: again, encoding: .utf8) == yaml)
    }

    /// kubeadm's kube-proxy DaemonSet: `--config=/var/lib/kube-proxy/config.conf --hostname-override=$(NODE_NAME)`,
    /// with the file kubeadm writes (zero values where it sets nothing; kube-proxy defaults them).
    @Test func kubeadmsManifestStarts() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let config = dir + "/config.conf", out = dir + "/effective.yaml"
        try Self.kubeadmConfig.write(toFile: config, atomically: true, encoding: .utf8)
        let result = try Command.output([strait, "proxy", "--config=\(config)", "--hostname-override=worker-1",
                                         "--write-config-to=\(out)"])
        #expect(result.succeeded, "\(result.stderr)")
        // Only what Strait does not do (yet) warns: the API client's kubeconfig.
        let warnings = result.stderr.split(separator: "\n").filter { $0.contains("warning") }
        #expect(warnings.allSatisfy { $0.contains("clientConnection") }, "\(warnings)")
        let yaml = try String(contentsOfFile: out, encoding: .utf8)
        for line in ["hostnameOverride: worker-1", "clusterCIDR: 10.244.0.0/16", "metricsBindAddress: 127.0.0.1:10249",
                     "healthzBindAddress: 0.0.0.0:10256", "  syncPeriod: 30s", "  masqueradeBit: 14", "  maxPerCore: 32768",
                     "  tcpEstablishedTimeout: 24h0m0s", "mode: iptables"] {
            #expect(yaml.contains(line + "\n"), "\(line)")
        }
    }

    static let kubeadmConfig = """
        apiVersion: kubeproxy.config.k8s.io/v1alpha1
        bindAddress: 0.0.0.0
        bindAddressHardFail: false
        clientConnection:
          acceptContentTypes: ""
          burst: 0
          contentType: ""
          kubeconfig: /var/lib/kube-proxy/kubeconfig.conf
          qps: 0
        clusterCIDR: 10.244.0.0/16
        configSyncPeriod: 0s
        conntrack:
          maxPerCore: null
          min: null
          tcpBeLiberal: false
          tcpCloseWaitTimeout: null
          tcpEstablishedTimeout: null
          udpStreamTimeout: 0s
          udpTimeout: 0s
        detectLocal:
          bridgeInterface: ""
          interfaceNamePrefix: ""
        detectLocalMode: ""
        enableProfiling: false
        healthzBindAddress: ""
        hostnameOverride: ""
        iptables:
          localhostNodePorts: null
          masqueradeAll: false
          masqueradeBit: null
          minSyncPeriod: 0s
          syncPeriod: 0s
        ipvs:
          excludeCIDRs: null
          minSyncPeriod: 0s
          scheduler: ""
          strictARP: false
          syncPeriod: 0s
          tcpFinTimeout: 0s
          tcpTimeout: 0s
          udpTimeout: 0s
        kind: KubeProxyConfiguration
        logging:
          flushFrequency: 0
          options:
            json:
              infoBufferSize: "0"
            text:
              infoBufferSize: "0"
          verbosity: 0
        metricsBindAddress: ""
        mode: ""
        nftables:
          masqueradeAll: false
          masqueradeBit: null
          minSyncPeriod: 0s
          syncPeriod: 0s
        nodePortAddresses: null
        oomScoreAdj: null
        portRange: ""
        showHiddenMetricsForVersion: ""
        winkernel:
          enableDSR: false
          forwardHealthCheckVip: false
          networkName: ""
          rootHnsEndpointName: ""
          sourceVip: ""
        """

    /// The same flags give the same file as kube-proxy v1.36.2's own `--write-config-to` (the real
    /// binary from /work/shared/tools), given Strait's two defaults that differ.
    @Test func writeConfigToMatchesKubeProxys() throws {
        let archive = "/work/shared/tools/kube-proxy.xz"
        guard FileManager.default.fileExists(atPath: archive) else { return }
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let kubeProxy = dir + "/kube-proxy"
        try Command.run(["sh", "-c", "xz -dc '\(archive)' > '\(kubeProxy)' && chmod +x '\(kubeProxy)'"])
        let flags = ["--iptables-min-sync-period=0s", "--iptables-localhost-nodeports=false",
                     "--hostname-override=Node-7", "--cluster-cidr=10.244.0.0/16,fd00:244::/48", "--masquerade-all",
                     "--iptables-masquerade-bit=9", "--iptables-sync-period=1m30s", "--conntrack-max-per-core=0",
                     "--conntrack-min=1000", "--conntrack-tcp-timeout-established=2h", "--conntrack-tcp-be-liberal=true",
                     "--conntrack-udp-timeout=45s", "--conntrack-udp-timeout-stream=2m", "--bind-address-hard-fail",
                     "--metrics-bind-address=0.0.0.0:10249", "--healthz-bind-address=127.0.0.1:10256", "-v=2",
                     "--nodeport-addresses=primary"]
        try Command.run([kubeProxy] + flags + ["--write-config-to=\(dir)/theirs.yaml"])
        let ours = try Command.output([strait, "proxy"] + flags + ["--write-config-to=\(dir)/ours.yaml"])
        #expect(ours.succeeded, "\(ours.stderr)")
        let theirs = try String(contentsOfFile: dir + "/theirs.yaml", encoding: .utf8)
        let mine = try String(contentsOfFile: dir + "/ours.yaml", encoding: .utf8)
        let diff = try Command.output(["diff", dir + "/theirs.yaml", dir + "/ours.yaml"]).stdout
        #expect(mine == theirs, "\(diff)")
    }

    @Test func badFlagsAreRefusedNamingTheFlag() throws {
        for (arguments, named) in [(["--no-such-flag"], "--no-such-flag"),
                                   (["--masquerade-all=maybe"], "--masquerade-all"),
                                   (["--iptables-masquerade-bit=40"], "--iptables-masquerade-bit"),
                                   (["--conntrack-udp-timeout=soon"], "--conntrack-udp-timeout"),
                                   (["--nodeport-addresses=10.0.0.0/33"], "--nodeport-addresses"),
                                   (["--cluster-cidr"], "--cluster-cidr")] {
            let result = try Command.output([strait, "proxy"] + arguments + ["--write-config-to=/dev/null"])
            #expect(!result.succeeded, "\(arguments)")
            #expect(result.stderr.contains(named), "\(arguments): \(result.stderr)")
        }
    }

    /// `--init-only` sets the conntrack sysctls of the namespace it runs in and exits; a needed raise of
    /// nf_conntrack_max (which belongs to the initial namespace) fails naming the file, as kube-proxy's does.
    @Test func initOnlySetsConntrackSysctlsInTheNamespace() async throws {
        try requireRoot()
        try await withTestNamespaces(1) { namespaces in
            let ns = namespaces[0]
            let result = try ns.output([strait, "proxy", "--init-only", "--conntrack-max-per-core=0",
                                        "--conntrack-tcp-timeout-established=2h", "--conntrack-tcp-timeout-close-wait=30m",
                                        "--conntrack-udp-timeout=45s", "--conntrack-udp-timeout-stream=3m",
                                        "--conntrack-tcp-be-liberal"])
            #expect(result.succeeded, "\(result.stderr)")
            #expect(result.stderr.contains("leaving nf_conntrack_max as it is"))
            func sysctl(_ name: String) throws -> String {
                try ns.run(["cat", "/proc/sys/net/netfilter/\(name)"]).trimmingCharacters(in: .whitespacesAndNewlines)
            }
            #expect(try sysctl("nf_conntrack_tcp_timeout_established") == "7200")
            #expect(try sysctl("nf_conntrack_tcp_timeout_close_wait") == "1800")
            #expect(try sysctl("nf_conntrack_udp_timeout") == "45")
            #expect(try sysctl("nf_conntrack_udp_timeout_stream") == "180")
            #expect(try sysctl("nf_conntrack_tcp_be_liberal") == "1")
            // Nothing else: no rules were written.
            #expect(!(try ns.run(["iptables-save"])).contains("KUBE-"))

            let current = Int(try sysctl("nf_conntrack_max")) ?? 0
            guard current < 1_048_576 else { return }
            let perCore = current + 1
            let raise = try ns.output([strait, "proxy", "--init-only", "--conntrack-max-per-core=\(perCore)",
                                       "--conntrack-min=0"])
            #expect(!raise.succeeded)
            #expect(raise.stderr.contains("nf_conntrack_max"), "\(raise.stderr)")
            #expect(try sysctl("nf_conntrack_max") == String(current))
        }
    }
}

import Foundation
@testable import StraitProxy
import StraitModel
import Testing

/// kube-proxy's command line as values: pflag syntax, precedence, the sysctl arithmetic, the
/// written configuration file. The binary is exercised in `ProxyFlagsCommandTests`.
@Suite struct KubeProxyFlagsTests {
    func configuration(_ arguments: [String], file: Bool = false) throws -> (ProxyConfiguration, [String]) {
        let parsed = try KubeProxyFlags.parse(arguments)
        var configuration = ProxyConfiguration()
        let warnings = try parsed.apply(to: &configuration, configFileGiven: file)
        return (configuration, parsed.warnings + warnings)
    }

    @Test func pflagSyntax() throws {
        let (c, warnings) = try configuration(["--masquerade-all", "--bind-address-hard-fail=true", "-v=3",
                                               "--iptables-masquerade-bit", "12", "--conntrack-tcp-be-liberal=1",
                                               "--iptables-sync-period=1m30s", "--iptables-min-sync-period=500ms",
                                               "--nodeport-addresses=primary"])
        #expect(warnings.isEmpty)
        #expect(c.masqueradeAll && c.bindAddressHardFail && c.conntrack.tcpBeLiberal)
        #expect(c.verbosity == 3 && c.masqueradeBit == 12)
        #expect(c.syncPeriod == .seconds(90) && c.minSyncPeriod == .milliseconds(500))
        #expect(c.nodePortAddresses == ["primary"])
        #expect(try configuration(["-v", "4"]).0.verbosity == 4)
        #expect(try configuration(["-v5"]).0.verbosity == 5)
        #expect(try configuration(["--masquerade-all", "--masquerade-all=false"]).0.masqueradeAll == false)
        let ipvs = try configuration(["--ipvs-scheduler", "lc", "--ipvs-strict-arp"]).0
        #expect(ipvs.ipvsScheduler == "lc" && ipvs.ipvsStrictARP)
        let (timeouts, timeoutWarnings) = try configuration(["--ipvs-tcp-timeout", "15m",
                                                             "--ipvs-tcpfin-timeout=2m30s", "--ipvs-udp-timeout", "5m"])
        #expect(timeoutWarnings.isEmpty, "\(timeoutWarnings)")
        #expect(timeouts.ipvsTCPTimeout == .seconds(900) && timeouts.ipvsTCPFinTimeout == .seconds(150)
                && timeouts.ipvsUDPTimeout == .seconds(300))
    }

    @Test func ipvsTimeoutsOutOfRangeAreRefusedByName() throws {
        for (flag, value) in [("--ipvs-tcp-timeout", "-5s"), ("--ipvs-udp-timeout", "1000h"),
                              ("--ipvs-tcpfin-timeout", "soon")] {
            #expect {
                _ = try configuration(["\(flag)=\(value)"])
            } throws: { error in
                "\(error)".hasPrefix(flag + ":")
            }
        }
        #expect {
            _ = try ProxyConfiguration.load(yaml: "ipvs: {tcpTimeout: 1000h}\n")
        } throws: { error in
            "\(error)".hasPrefix("ipvs.tcpTimeout:") && "\(error)".contains("596h31m23s")
        }
    }

    @Test func unimplementedFlagsWarnByName() throws {
        let (_, warnings) = try configuration(["--feature-gates=A=true,B=false", "--ipvs-sync-period", "10s", "--profiling",
                                               "--oom-score-adj=-999", "--pod-interface-name-prefix=veth",
                                               "--detect-local-mode=ClusterCIDR", "--iptables-localhost-nodeports=false",
                                               "--detect-local-mode=NodeCIDR", "--iptables-localhost-nodeports"])
        #expect(warnings.count == 7, "\(warnings)")
        for flag in ["--feature-gates", "--ipvs-sync-period", "--profiling", "--oom-score-adj", "--pod-interface-name-prefix",
                     "--detect-local-mode=NodeCIDR", "--iptables-localhost-nodeports=true"] {
            #expect(warnings.contains { $0.hasPrefix(flag + " is accepted but not implemented") }, "\(flag)")
        }
    }

    @Test func everyKubeProxyFlagIsKnown() throws {
        // `kube-proxy --help` of v1.36.2, minus the API client flags another file owns.
        let names = """
            bind-address bind-address-hard-fail boot-id-file cleanup cluster-cidr config config-sync-period
            conntrack-max-per-core conntrack-min conntrack-tcp-be-liberal conntrack-tcp-timeout-close-wait
            conntrack-tcp-timeout-established conntrack-udp-timeout conntrack-udp-timeout-stream detect-local-mode
            feature-gates healthz-bind-address hostname-override init-only iptables-localhost-nodeports
            iptables-masquerade-bit iptables-min-sync-period iptables-sync-period ipvs-exclude-cidrs
            ipvs-min-sync-period ipvs-scheduler ipvs-strict-arp ipvs-sync-period ipvs-tcp-timeout ipvs-tcpfin-timeout
            ipvs-udp-timeout log-flush-frequency log-json-info-buffer-size log-json-split-stream
            log-text-info-buffer-size log-text-split-stream logging-format machine-id-file masquerade-all
            metrics-bind-address nodeport-addresses oom-score-adj pod-bridge-interface pod-interface-name-prefix
            profiling proxy-mode show-hidden-metrics-for-version v version vmodule write-config-to
            healthz-port metrics-port
            """.split(whereSeparator: \.isWhitespace)
        for name in names { #expect(KubeProxyFlags.byName[String(name)] != nil, "\(name)") }
    }

    @Test func configFilePrecedence() throws {
        var file = ProxyConfiguration()
        file.masqueradeAll = false
        file.hostnameOverride = "from-file"
        let parsed = try KubeProxyFlags.parse(["--masquerade-all=true", "--hostname-override=Flag-Node", "--v=2"])
        let warnings = try parsed.apply(to: &file, configFileGiven: true)
        #expect(file.masqueradeAll == false && file.hostnameOverride == "flag-node" && file.verbosity == 2)
        #expect(warnings == ["--masquerade-all is ignored: with --config, kube-proxy takes every setting from the file"])
    }

    @Test func badInputNamesTheFlag() {
        for (arguments, field) in [(["--nope"], "--nope"), (["--masquerade-all=yes"], "--masquerade-all"),
                                   (["--cluster-cidr"], "--cluster-cidr"), (["-x"], "-x"), (["stray"], "stray")] {
            #expect(throws: ProxyConfiguration.Error.self) { try KubeProxyFlags.parse(arguments) }
            do {
                _ = try KubeProxyFlags.parse(arguments)
            } catch {
                #expect(error.field == field, "\(arguments)")
            }
        }
        for arguments in [["--iptables-masquerade-bit=32"], ["--iptables-sync-period=0s"], ["--conntrack-min=-1"],
                          ["--proxy-mode=userspace"], ["--v=high"]] {
            #expect(throws: ProxyConfiguration.Error.self, "\(arguments)") { try configuration(arguments) }
        }
    }

    @Test func conntrackMaxAsKubeProxyComputesIt() {
        var settings = ConntrackSettings()
        #expect(settings.wantedMax(cpus: 2) == 131_072)
        #expect(settings.wantedMax(cpus: 8) == 262_144)
        #expect(settings.wantedMax(cpus: 64) == 1_048_576)
        settings.maxPerCore = 0
        #expect(settings.wantedMax(cpus: 8) == nil)
        #expect(CPUList.count("0-3,5,7-8") == 7 && CPUList.count("0") == 1 && CPUList.count("x") == nil)
    }

    @Test func goDurationsPrintAsGoPrintsThem() {
        for (duration, text) in [(Duration.zero, "0s"), (.seconds(30), "30s"), (.seconds(90), "1m30s"),
                                 (.seconds(86400), "24h0m0s"), (.milliseconds(500), "500ms"),
                                 (.milliseconds(1500), "1.5s"), (.seconds(3600), "1h0m0s")] {
            #expect(GoDuration.format(duration) == text)
            #expect(GoDuration.parse(text) == duration)
        }
    }

    @Test func theWrittenFileReadsBackTheSame() throws {
        var c = ProxyConfiguration()
        c.masqueradeAll = true
        c.masqueradeBit = 9
        c.clusterCIDRs = [IPCIDR("10.244.0.0/16")!, IPCIDR("fd00:244::/48")!]
        c.nodePortAddresses = ["primary", "10.0.0.0/8"]
        c.conntrack.udpTimeout = .seconds(45)
        c.bindAddressHardFail = true
        c.verbosity = 2
        c.hostnameOverride = "node-1"
        c.bindAddress = "0.0.0.0"
        let (read, warnings) = try ProxyConfiguration.load(yaml: c.kubeProxyConfigurationYAML())
        #expect(warnings.isEmpty, "\(warnings)")
        #expect(read == c)
    }

    @Test func nonDefaultUnimplementedFieldsWarn() throws {
        let (_, warnings) = try ProxyConfiguration.load(yaml: """
            apiVersion: kubeproxy.config.k8s.io/v1alpha1
            kind: KubeProxyConfiguration
            ipvs: {scheduler: lc, strictARP: true, tcpTimeout: 10s, syncPeriod: 10s}
            enableProfiling: false
            oomScoreAdj: -500
            """)
        #expect(warnings.count == 2, "\(warnings)")
        #expect(warnings.contains { $0.hasPrefix("ipvs.syncPeriod") } && warnings.contains { $0.hasPrefix("oomScoreAdj") })
        let (read, _) = try ProxyConfiguration.load(yaml: """
            ipvs: {scheduler: lc, strictARP: true, tcpTimeout: 10s, tcpFinTimeout: 1m, udpTimeout: 0s}
            """)
        #expect(read.ipvsScheduler == "lc" && read.ipvsStrictARP)
        #expect(read.ipvsTCPTimeout == .seconds(10) && read.ipvsTCPFinTimeout == .seconds(60)
                && read.ipvsUDPTimeout == .zero)
    }
}

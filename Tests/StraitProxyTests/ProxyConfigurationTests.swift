import StraitModel
@testable import StraitProxy
import Testing

@Suite struct ProxyConfigurationTests {
    @Test func defaults() {
        let config = ProxyConfiguration()
        #expect(config.mode == .iptables)
        #expect(config.syncPeriod == .seconds(30) && config.minSyncPeriod == .zero)
        #expect(config.metricsBindAddress?.description == "127.0.0.1:10249")
        #expect(config.healthzBindAddress?.description == "0.0.0.0:10256")
        #expect(!config.nodeName.isEmpty)
    }

    @Test func loadsKubeProxyConfiguration() throws {
        let (config, warnings) = try ProxyConfiguration.load(yaml: """
            apiVersion: kubeproxy.config.k8s.io/v1alpha1
            kind: KubeProxyConfiguration
            mode: iptables
            bindAddress: 0.0.0.0
            clusterCIDR: 10.244.0.0/16,fd00:244::/56
            hostnameOverride: Node-1
            metricsBindAddress: 0.0.0.0:10249
            healthzBindAddress: "[::]:10256"
            nodePortAddresses: ["192.168.0.0/16", "primary"]
            iptables:
              masqueradeAll: true
              syncPeriod: 1m0s
              minSyncPeriod: 250ms
              localhostNodePorts: true
            conntrack:
              maxPerCore: 32768
            featureGates: {}
            """)
        #expect(config.clusterCIDRs == [IPCIDR("10.244.0.0/16")!, IPCIDR("fd00:244::/56")!])
        #expect(config.nodeName == "node-1")
        #expect(config.metricsBindAddress == BindAddress(host: "0.0.0.0", port: 10249))
        #expect(config.healthzBindAddress == BindAddress(host: "::", port: 10256))
        #expect(config.nodePortAddresses == ["192.168.0.0/16", "primary"])
        #expect(config.masqueradeAll)
        #expect(config.syncPeriod == .seconds(60))
        #expect(config.minSyncPeriod == .milliseconds(250))
        #expect(config.conntrack.maxPerCore == 32768)
        // Only what Strait does not do warns (an empty featureGates asks for nothing).
        #expect(warnings.count == 1, "\(warnings)")
        #expect(warnings.contains { $0.hasPrefix("iptables.localhostNodePorts") })
    }

    @Test func refusesBadValues() {
        #expect(throws: ProxyConfiguration.Error.self) {
            try ProxyConfiguration.load(yaml: "kind: KubeProxyConfiguration\niptables:\n  syncPeriod: soon\n")
        }
        #expect(throws: ProxyConfiguration.Error.self) { try ProxyConfiguration.load(yaml: "kind: Pod\n") }
        #expect(throws: ProxyConfiguration.Error.self) { try ProxyConfiguration.load(yaml: "mode: userspace\n") }
        #expect(throws: ProxyConfiguration.Error.self) { try ProxyConfiguration.load(yaml: "clusterCIDR: 10.244.0.0/33\n") }
        #expect(throws: ProxyConfiguration.Error.self) { try ProxyConfiguration.load(yaml: "metricsBindAddress: nowhere:1\n") }
    }

    @Test func goDurations() {
        #expect(GoDuration.parse("30s") == .seconds(30))
        #expect(GoDuration.parse("1m0s") == .seconds(60))
        #expect(GoDuration.parse("1h30m") == .seconds(5400))
        #expect(GoDuration.parse("1.5s") == .milliseconds(1500))
        #expect(GoDuration.parse("500ms") == .milliseconds(500))
        #expect(GoDuration.parse("10us") == .microseconds(10))
        #expect(GoDuration.parse("0") == .zero)
        #expect(GoDuration.parse("") == nil)
        #expect(GoDuration.parse("30") == nil)
        #expect(GoDuration.parse("5d") == nil)
    }

    @Test func bindAddresses() {
        #expect(BindAddress(parsing: "127.0.0.1:10249", defaultPort: 1) == BindAddress(host: "127.0.0.1", port: 10249))
        #expect(BindAddress(parsing: "[::1]:9", defaultPort: 1) == BindAddress(host: "::1", port: 9))
        #expect(BindAddress(parsing: "0.0.0.0", defaultPort: 10256) == BindAddress(host: "0.0.0.0", port: 10256))
        #expect(BindAddress(parsing: "::", defaultPort: 10256) == BindAddress(host: "::", port: 10256))
        #expect(BindAddress(parsing: "localhost:1", defaultPort: 1) == nil)
        #expect(BindAddress(parsing: "1.2.3.4:99999", defaultPort: 1) == nil)
    }
}

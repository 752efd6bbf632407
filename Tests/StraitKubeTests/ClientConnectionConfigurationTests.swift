import StraitProxy
import Testing

/// `clientConnection` of a KubeProxyConfiguration (kubeadm writes one), as `strait proxy --config` reads it.
struct ClientConnectionConfigurationTests {
    @Test func kubeadmStyleClientConnectionIsRead() throws {
        let (config, warnings) = try ProxyConfiguration.load(yaml: """
            apiVersion: kubeproxy.config.k8s.io/v1alpha1
            kind: KubeProxyConfiguration
            clientConnection:
              acceptContentTypes: ""
              burst: 20
              contentType: ""
              kubeconfig: /var/lib/kube-proxy/kubeconfig.conf
              qps: 0
            """)
        #expect(config.clientConnection.kubeconfig == "/var/lib/kube-proxy/kubeconfig.conf")
        #expect(config.clientConnection.burst == 20)
        #expect(config.clientConnection.qps == nil, "0 means the default")
        #expect(config.clientConnection.contentType == nil)
        #expect(warnings.isEmpty, "\(warnings)")
    }

    @Test func badValuesNameTheField() {
        #expect(throws: ProxyConfiguration.Error(field: "clientConnection.qps", problem: "expected a number")) {
            _ = try ProxyConfiguration.load(yaml: "clientConnection: {qps: lots}")
        }
    }
}

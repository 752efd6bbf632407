import StraitModel
import Yams

extension ProxyConfiguration {
    /// The effective configuration as the `KubeProxyConfiguration` file kube-proxy's
    /// `--write-config-to` writes: every field kube-proxy v1.36 has, Strait's values where it
    /// implements the field and kube-proxy's defaults elsewhere, so `--config` reads it back
    /// unchanged and without warnings.
    public func kubeProxyConfigurationYAML() -> String {
        func quoted(_ text: String) -> String { text.isEmpty ? "\"\"" : text }
        func address(_ bind: BindAddress?) -> String { bind.map(\.description) ?? "\"\"" }
        let nodePorts = nodePortAddresses.isEmpty
            ? " null" : "\n" + nodePortAddresses.map { "- \($0)" }.joined(separator: "\n")
        let duration = GoDuration.format
        func number(_ value: Double) -> String { value == value.rounded() ? String(Int(value)) : String(value) }
        return """
            apiVersion: kubeproxy.config.k8s.io/v1alpha1
            bindAddress: \(bindAddress ?? "0.0.0.0")
            bindAddressHardFail: \(bindAddressHardFail)
            clientConnection:
              acceptContentTypes: ""
              burst: \(clientConnection.burst ?? ClientConnection.kubeProxyBurst)
              contentType: \(clientConnection.contentType ?? ClientConnection.kubeProxyContentType)
              kubeconfig: \(quoted(clientConnection.kubeconfig ?? ""))
              qps: \(number(clientConnection.qps ?? ClientConnection.kubeProxyQPS))
            clusterCIDR: \(quoted(clusterCIDRs.map(\.description).joined(separator: ",")))
            configSyncPeriod: 15m0s
            conntrack:
              maxPerCore: \(conntrack.maxPerCore)
              min: \(conntrack.min)
              tcpBeLiberal: \(conntrack.tcpBeLiberal)
              tcpCloseWaitTimeout: \(duration(conntrack.tcpCloseWaitTimeout))
              tcpEstablishedTimeout: \(duration(conntrack.tcpEstablishedTimeout))
              udpStreamTimeout: \(duration(conntrack.udpStreamTimeout))
              udpTimeout: \(duration(conntrack.udpTimeout))
            detectLocal:
              bridgeInterface: ""
              interfaceNamePrefix: ""
            detectLocalMode: ClusterCIDR
            enableProfiling: false
            healthzBindAddress: \(address(healthzBindAddress))
            hostnameOverride: \(quoted(hostnameOverride ?? ""))
            iptables:
              localhostNodePorts: false
              masqueradeAll: \(masqueradeAll)
              masqueradeBit: \(masqueradeBit)
              minSyncPeriod: \(duration(minSyncPeriod))
              syncPeriod: \(duration(syncPeriod))
            ipvs:
              excludeCIDRs: null
              minSyncPeriod: 0s
              scheduler: \(ipvsScheduler == "rr" ? "\"\"" : ipvsScheduler)
              strictARP: \(ipvsStrictARP)
              syncPeriod: 0s
              tcpFinTimeout: \(duration(ipvsTCPFinTimeout))
              tcpTimeout: \(duration(ipvsTCPTimeout))
              udpTimeout: \(duration(ipvsUDPTimeout))
            kind: KubeProxyConfiguration
            logging:
              flushFrequency: 5s
              format: text
              options:
                json:
                  infoBufferSize: "0"
                text:
                  infoBufferSize: "0"
              verbosity: \(verbosity)
            metricsBindAddress: \(address(metricsBindAddress))
            mode: \(mode.rawValue)
            nftables:
              masqueradeAll: false
              masqueradeBit: 14
              minSyncPeriod: 0s
              syncPeriod: 0s
            nodePortAddresses:\(nodePorts)
            oomScoreAdj: -999
            portRange: ""
            showHiddenMetricsForVersion: ""
            winkernel:
              enableDSR: false
              forwardHealthCheckVip: false
              networkName: ""
              rootHnsEndpointName: ""
              sourceVip: ""

            """
    }

    /// kube-proxy v1.36's defaults (`kube-proxy --write-config-to`): a field Strait does not
    /// implement but that holds its default asks for nothing Strait lacks, so it is read silently.
    static var kubeProxyDefaults: Yams.Node? { try? Yams.compose(yaml: defaultsDocument) }

    static let defaultsDocument = ProxyConfiguration().kubeProxyConfigurationYAML()

    /// Whether `value` at `path` (`ipvs.scheduler`) is kube-proxy's default; null and "" count as
    /// the zero value of any scalar.
    static func isKubeProxyDefault(_ value: Yams.Node, at path: [String]) -> Bool {
        var node = kubeProxyDefaults
        for key in path { node = node?.mapping?[key] }
        guard let node else { return false }
        return sameValue(value, node)
    }

    private static func sameValue(_ a: Yams.Node, _ b: Yams.Node) -> Bool {
        // kube-proxy's defaulting fills in a zero value (null, "", 0, 0s), so such a value is its default.
        func isEmpty(_ n: Yams.Node) -> Bool {
            if let s = n.scalar { return ["null", "", "~", "0", "0s"].contains(s.string) }
            if let m = n.mapping { return m.allSatisfy { isEmpty($0.value) } }
            if let q = n.sequence { return q.isEmpty }
            return false
        }
        if let x = a.scalar, let y = b.scalar { return x.string == y.string || isEmpty(a) }
        if let x = a.mapping, let y = b.mapping {
            return x.allSatisfy { key, value in y[key].map { sameValue(value, $0) } ?? isEmpty(value) }
        }
        return isEmpty(a)
    }
}

extension GoDuration {
    /// Go's `time.Duration.String()`: `0s`, `500ms`, `1.5s`, `1m30s`, `24h0m0s`.
    public static func format(_ duration: Duration) -> String {
        let (seconds, attoseconds) = duration.components
        var nanos = seconds * 1_000_000_000 + attoseconds / 1_000_000_000
        if nanos == 0 { return "0s" }
        let sign = nanos < 0 ? "-" : ""
        nanos = abs(nanos)
        func fraction(_ value: Int64, _ unit: Int64) -> String {
            let whole = value / unit
            var rest = String(value % unit)
            let digits = String(unit).count - 1
            rest = String(repeating: "0", count: digits - rest.count) + rest
            while rest.hasSuffix("0") { rest.removeLast() }
            return rest.isEmpty ? "\(whole)" : "\(whole).\(rest)"
        }
        if nanos < 1000 { return "\(sign)\(nanos)ns" }
        if nanos < 1_000_000 { return "\(sign)\(fraction(nanos, 1000))µs" }
        if nanos < 1_000_000_000 { return "\(sign)\(fraction(nanos, 1_000_000))ms" }
        let hours = nanos / 3_600_000_000_000
        let minutes = nanos / 60_000_000_000 % 60
        let secondsText = fraction(nanos % 60_000_000_000, 1_000_000_000) + "s"
        if hours > 0 { return "\(sign)\(hours)h\(minutes)m\(secondsText)" }
        if minutes > 0 { return "\(sign)\(minutes)m\(secondsText)" }
        return sign + secondsText
    }
}

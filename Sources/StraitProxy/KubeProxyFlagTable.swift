import StraitModel

/// Every flag of kube-proxy v1.36 (`kube-proxy --help`, plus its hidden `--healthz-port` and
/// `--metrics-port`; the API client's `--kubeconfig`, `--master` and `--kube-api-*` live with the
/// Kubernetes source), and Strait's own two aliases, with what `strait proxy` does with each.
enum KubeProxyFlagTable {
    typealias Flag = KubeProxyFlags.Flag
    typealias Failure = ProxyConfiguration.Error
    typealias Apply = Flag.Apply

    /// A flag that sets a configuration field.
    static func set(_ name: String, _ kind: Flag.Kind, _ help: String, straitOnly: Bool = false,
                    _ apply: @escaping Apply) -> Flag {
        Flag(name: name, kind: kind, support: .configuration(apply: apply), help: help, straitOnly: straitOnly)
    }

    /// A flag accepted with a warning.
    static func ignored(_ name: String, _ kind: Flag.Kind, _ reason: String) -> Flag {
        Flag(name: name, kind: kind, support: .ignored(reason), help: "")
    }

    static func duration(_ text: String, _ flag: String) throws(Failure) -> Duration {
        guard let value = GoDuration.parse(text), value >= .zero else {
            throw Failure(field: flag, problem: "\(String(reflecting: text)) is not a duration (like 30s, 1m0s)")
        }
        return value
    }

    static func positive(_ text: String, _ flag: String) throws(Failure) -> Duration {
        let value = try duration(text, flag)
        guard value > .zero else { throw Failure(field: flag, problem: "must be greater than 0") }
        return value
    }

    static func ipvsTimeout(_ text: String, _ flag: String) throws(Failure) -> Duration {
        try ProxyConfiguration.checkIPVSTimeout(duration(text, flag), field: flag)
    }

    static func number(_ text: String, _ flag: String, _ range: ClosedRange<Int> = 0...Int(Int32.max)) throws(Failure)
        -> Int {
        guard let value = Int(text), range.contains(value) else {
            throw Failure(field: flag, problem: "\(String(reflecting: text)) is not a number in \(range)")
        }
        return value
    }

    static let notUsed = "Strait does not use it"
    static let ipvs = "Strait's ipvs mode does not implement it"
    static let logging = "Strait writes plain text logs to standard error; only -v is read"
    static let localDetector = "Strait detects local traffic by --cluster-cidr only (ClusterCIDR)"
    static let localhostNodePorts = "Strait never answers NodePorts on 127.0.0.1 (no route_localnet, "
        + "CVE-2020-8558), as kube-proxy's nftables mode"

    static let flags: [Flag] = [
        ignored("bind-address", .value("ip"), "Strait takes the node's addresses from its interfaces"),
        set("bind-address-hard-fail", .bool,
            "Exit when the health or metrics server cannot bind (else log and retry every 5 s).") {
            c, v throws(Failure) in c.bindAddressHardFail = v == "true"
        },
        ignored("boot-id-file", .value("string"), notUsed),
        Flag(name: "cleanup", kind: .bool, support: .command,
             help: "Remove every rule Strait made in any mode (iptables, nftables, ipvs), then exit."),
        set("cluster-cidr", .value("string"),
            "Pod CIDRs, one per family: traffic to a cluster IP from outside them is masqueraded.") {
            c, v throws(Failure) in c.clusterCIDRs = try ProxyConfiguration.parseCIDRs(v)
        },
        Flag(name: "config", kind: .value("string"), support: .command,
             help: "A KubeProxyConfiguration file; it gives every setting but --hostname-override and -v."),
        ignored("config-sync-period", .value("duration"), "Strait's sources watch without a periodic re-list"),
        set("conntrack-max-per-core", .value("int32"),
            "Raise nf_conntrack_max to this × CPUs, at least --conntrack-min; 0 leaves it (default 32768).") {
            c, v throws(Failure) in c.conntrack.maxPerCore = try number(v, "--conntrack-max-per-core")
        },
        set("conntrack-min", .value("int32"), "The least nf_conntrack_max to raise to (default 131072).") {
            c, v throws(Failure) in c.conntrack.min = try number(v, "--conntrack-min")
        },
        set("conntrack-tcp-be-liberal", .bool, "Set nf_conntrack_tcp_be_liberal to 1.") { c, v throws(Failure) in
            c.conntrack.tcpBeLiberal = v == "true"
        },
        set("conntrack-tcp-timeout-close-wait", .value("duration"),
            "nf_conntrack_tcp_timeout_close_wait (default 1h0m0s; 0 leaves it).") { c, v throws(Failure) in
            c.conntrack.tcpCloseWaitTimeout = try duration(v, "--conntrack-tcp-timeout-close-wait")
        },
        set("conntrack-tcp-timeout-established", .value("duration"),
            "nf_conntrack_tcp_timeout_established (default 24h0m0s; 0 leaves it).") { c, v throws(Failure) in
            c.conntrack.tcpEstablishedTimeout = try duration(v, "--conntrack-tcp-timeout-established")
        },
        set("conntrack-udp-timeout", .value("duration"), "nf_conntrack_udp_timeout (default 0: left as it is).") {
            c, v throws(Failure) in c.conntrack.udpTimeout = try duration(v, "--conntrack-udp-timeout")
        },
        set("conntrack-udp-timeout-stream", .value("duration"),
            "nf_conntrack_udp_timeout_stream (default 0: left as it is).") { c, v throws(Failure) in
            c.conntrack.udpStreamTimeout = try duration(v, "--conntrack-udp-timeout-stream")
        },
        Flag(name: "detect-local-mode", kind: .value("LocalMode"),
             support: .valueChecked(accepts: { $0.isEmpty || $0 == "ClusterCIDR" }, reason: localDetector),
             help: "ClusterCIDR (the default): local traffic is traffic from --cluster-cidr."),
        ignored("feature-gates", .value("mapStringBool"), "Strait has no feature gates"),
        set("healthz-bind-address", .value("ipport"),
            "Address of /healthz and /livez (default 0.0.0.0:10256; \"\" disables).") { c, v throws(Failure) in
            c.healthzBindAddress = try ProxyConfiguration.parseBindAddress(v, defaultPort: 10256,
                                                                           field: "--healthz-bind-address")
        },
        ignored("healthz-port", .value("int32"), "deprecated in kube-proxy; use --healthz-bind-address"),
        Flag(name: "hostname-override", kind: .value("string"),
             support: .configuration(overridesConfigFile: true) { c, v throws(Failure) in
                 let name = String(v.drop { $0 == " " }.reversed().drop { $0 == " " }.reversed())
                 c.hostnameOverride = name.isEmpty ? nil : name.lowercased()
             },
             help: "The node name (default: the host name); overrides the --config file."),
        Flag(name: "init-only", kind: .bool, support: .command,
             help: "Do the one-time set-up (the conntrack sysctls), then exit."),
        Flag(name: "iptables-localhost-nodeports", kind: .bool,
             support: .valueChecked(accepts: { $0 == "false" }, reason: localhostNodePorts),
             help: "false: no NodePorts on 127.0.0.1, which is what Strait always does."),
        set("iptables-masquerade-bit", .value("int32"),
            "The fwmark bit (0-31) marking packets to masquerade (default 14: 0x4000).") { c, v throws(Failure) in
            c.masqueradeBit = try number(v, "--iptables-masquerade-bit", 0...31)
        },
        set("iptables-min-sync-period", .value("duration"),
            "Least time between syncs (default 0s: a lone change is programmed at once; kube-proxy's is 1s).") {
            c, v throws(Failure) in c.minSyncPeriod = try duration(v, "--iptables-min-sync-period")
        },
        set("iptables-sync-period", .value("duration"), "Time between full syncs (default 30s).") {
            c, v throws(Failure) in c.syncPeriod = try positive(v, "--iptables-sync-period")
        },
        ignored("ipvs-exclude-cidrs", .value("strings"), ipvs),
        ignored("ipvs-min-sync-period", .value("duration"), ipvs),
        set("ipvs-scheduler", .value("string"), "ipvs mode: rr (the default), wrr, lc, sh or mh.") {
            c, v throws(Failure) in c.ipvsScheduler = v.isEmpty ? "rr" : v
        },
        set("ipvs-strict-arp", .bool, "ipvs mode: arp_ignore=1 and arp_announce=2, so only the node answers ARP.") {
            c, v throws(Failure) in c.ipvsStrictARP = v == "true"
        },
        ignored("ipvs-sync-period", .value("duration"), ipvs),
        set("ipvs-tcp-timeout", .value("duration"), "ipvs mode: idle timeout of TCP connections (0 leaves it).") {
            c, v throws(Failure) in c.ipvsTCPTimeout = try ipvsTimeout(v, "--ipvs-tcp-timeout")
        },
        set("ipvs-tcpfin-timeout", .value("duration"), "ipvs mode: TCP timeout after a FIN (0 leaves it).") {
            c, v throws(Failure) in c.ipvsTCPFinTimeout = try ipvsTimeout(v, "--ipvs-tcpfin-timeout")
        },
        set("ipvs-udp-timeout", .value("duration"), "ipvs mode: idle timeout of UDP flows (0 leaves it).") {
            c, v throws(Failure) in c.ipvsUDPTimeout = try ipvsTimeout(v, "--ipvs-udp-timeout")
        },
        ignored("log-flush-frequency", .value("duration"), logging),
        ignored("log-json-info-buffer-size", .value("quantity"), logging),
        ignored("log-json-split-stream", .bool, logging),
        ignored("log-text-info-buffer-size", .value("quantity"), logging),
        ignored("log-text-split-stream", .bool, logging),
        ignored("logging-format", .value("string"), logging),
        ignored("machine-id-file", .value("string"), notUsed),
        set("masquerade-all", .bool, "Masquerade all traffic to cluster IPs.") { c, v throws(Failure) in
            c.masqueradeAll = v == "true"
        },
        set("metrics-bind-address", .value("ipport"),
            "Address of /metrics and /proxyMode (default 127.0.0.1:10249; \"\" disables).") { c, v throws(Failure) in
            c.metricsBindAddress = try ProxyConfiguration.parseBindAddress(v, defaultPort: 10249,
                                                                           field: "--metrics-bind-address")
        },
        ignored("metrics-port", .value("int32"), "deprecated in kube-proxy; use --metrics-bind-address"),
        set("min-sync-period", .value("duration"), "The same as --iptables-min-sync-period.", straitOnly: true) {
            c, v throws(Failure) in c.minSyncPeriod = try duration(v, "--min-sync-period")
        },
        set("nodeport-addresses", .value("strings"),
            "CIDRs or primary (the node's addresses): NodePorts and health check node ports answer only there.") {
            c, v throws(Failure) in
            c.nodePortAddresses = v.split(separator: ",").map { String($0.drop { $0 == " " }) }
            _ = try c.proxyOptions(nodeIPs: [])
        },
        ignored("oom-score-adj", .value("int32"), "Strait leaves its OOM score as it is"),
        ignored("pod-bridge-interface", .value("string"), localDetector),
        ignored("pod-interface-name-prefix", .value("string"), localDetector),
        ignored("profiling", .bool, "Strait serves no /debug/pprof"),
        set("proxy-mode", .value("ProxyMode"), "iptables (the default); nftables and ipvs as the build offers them.") {
            c, v throws(Failure) in
            if v.isEmpty {
                c.mode = .iptables
                return
            }
            guard let mode = ProxyMode(rawValue: v) else {
                throw Failure(field: "--proxy-mode",
                              problem: "\(String(reflecting: v)) is not iptables, nftables or ipvs")
            }
            c.mode = mode
        },
        ignored("show-hidden-metrics-for-version", .value("string"), "Strait hides no metrics"),
        set("sync-period", .value("duration"), "The same as --iptables-sync-period.", straitOnly: true) {
            c, v throws(Failure) in c.syncPeriod = try positive(v, "--sync-period")
        },
        Flag(name: "v", kind: .value("Level"),
             support: .configuration(overridesConfigFile: true) { c, v throws(Failure) in
                 c.verbosity = try number(v, "--v")
             },
             help: "Log verbosity: 2 and above logs debug lines; overrides the --config file."),
        ignored("version", .bool, "use strait --version"),
        ignored("vmodule", .value("pattern=N,..."), logging),
        Flag(name: "write-config-to", kind: .value("string"), support: .command,
             help: "Write the effective KubeProxyConfiguration to this file, then exit."),
    ]
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import StraitModel
import Yams

/// The proxy's settings, named as kube-proxy's flags and `KubeProxyConfiguration` fields. The
/// `strait proxy` command starts from `ProxyConfiguration()` or `load(yaml:)` (`--config`) and
/// then sets the fields whose flags were given.
public struct ProxyConfiguration: Sendable, Hashable {
    public var mode: ProxyMode = .iptables
    /// `--hostname-override`; nil means the host name. See `nodeName`.
    public var hostnameOverride: String?
    /// `--cluster-cidr` (comma-separated in the flag): pod traffic from outside these is masqueraded.
    public var clusterCIDRs: [IPCIDR] = []
    /// `--nodeport-addresses`: CIDRs (or `primary`) whose node addresses accept NodePorts; empty
    /// means all local addresses.
    public var nodePortAddresses: [String] = []
    /// `--masquerade-all`.
    public var masqueradeAll = false
    /// `--min-sync-period`: 0 here (kube-proxy's default is 1 s); see `SyncLoop`.
    public var minSyncPeriod: Duration = .zero
    /// `--sync-period`: 30 s.
    public var syncPeriod: Duration = .seconds(30)
    /// `--metrics-bind-address` (127.0.0.1:10249); nil disables the server.
    public var metricsBindAddress: BindAddress? = BindAddress(host: "127.0.0.1", port: 10249)
    /// `--healthz-bind-address` (0.0.0.0:10256); nil disables the server.
    public var healthzBindAddress: BindAddress? = BindAddress(host: "0.0.0.0", port: 10256)
    /// `bindAddress` of the configuration file (kept for compatibility; unused).
    public var bindAddress: String?
    /// `clientConnection` of the configuration file: how to reach the Kubernetes API.
    public var clientConnection = ClientConnection()

    /// kube-proxy's `ClientConnectionConfiguration`; nil, 0 or kube-proxy's own default value
    /// means "the default".
    public struct ClientConnection: Sendable, Hashable {
        public var kubeconfig: String?
        public var qps: Double?
        public var burst: Int?
        public var contentType: String?

        public init() {}

        /// kube-proxy's defaults, as its `--write-config-to` writes them. Its default content type is
        /// protobuf; Strait's client speaks JSON, so that default reads as "Strait's default".
        static let kubeProxyQPS = 5.0
        static let kubeProxyBurst = 10
        static let kubeProxyContentType = "application/vnd.kubernetes.protobuf"
    }
    /// `--bind-address-hard-fail`: a health or metrics server that cannot bind stops the proxy;
    /// otherwise it is logged and retried every 5 s.
    public var bindAddressHardFail = false
    /// `--conntrack-*`: the sysctls set at start-up (see `ConntrackSysctls`).
    public var conntrack = ConntrackSettings()
    /// `--iptables-masquerade-bit`: the fwmark bit (0–31) that marks packets to masquerade.
    public var masqueradeBit = 14
    /// `--ipvs-scheduler` (`ipvs.scheduler`): the IPVS scheduler of every virtual service.
    public var ipvsScheduler = "rr"
    /// `--ipvs-strict-arp` (`ipvs.strictARP`).
    public var ipvsStrictARP = false
    /// `--ipvs-tcp-timeout`, `--ipvs-tcpfin-timeout`, `--ipvs-udp-timeout` (`ipvs.tcpTimeout`,
    /// `ipvs.tcpFinTimeout`, `ipvs.udpTimeout`): IPVS's idle timeouts, in whole seconds; 0 leaves one as it is.
    public var ipvsTCPTimeout: Duration = .zero
    public var ipvsTCPFinTimeout: Duration = .zero
    public var ipvsUDPTimeout: Duration = .zero
    /// `--v` (`logging.verbosity`): 2 and above log debug lines.
    public var verbosity = 0

    public init() {}

    /// `hostnameOverride` or the host name, lowercased, as kube-proxy's node name.
    public var nodeName: String {
        if let hostnameOverride, !hostnameOverride.isEmpty { return hostnameOverride.lowercased() }
        var buffer = [CChar](repeating: 0, count: 256)
        guard gethostname(&buffer, buffer.count) == 0 else { return "localhost" }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self).lowercased()
    }

    /// The proxy's options, built once for the plan and every mode. `nodeIPs` are the node's own
    /// addresses (`NodeAddresses.local()` in production). `--nodeport-addresses primary` means the
    /// node's addresses themselves.
    public func proxyOptions(nodeIPs: [IPAddress]) throws(Error) -> ProxyOptions {
        var ranges: [IPCIDR] = []
        for text in nodePortAddresses {
            if text == "primary" {
                ranges += nodeIPs.map { IPCIDR(host: $0) }
                continue
            }
            guard let cidr = IPCIDR(text) else {
                throw Error(field: "--nodeport-addresses", problem: "\(String(reflecting: text)) is not a CIDR or primary")
            }
            ranges.append(cidr.masked)
        }
        return ProxyOptions(clusterCIDRs: clusterCIDRs, masqueradeAll: masqueradeAll, nodePortAddresses: ranges,
                            nodeIPs: nodeIPs)
    }

    /// A configuration problem, naming the field.
    public struct Error: Swift.Error, Sendable, Hashable, CustomStringConvertible {
        public var field: String
        public var problem: String
        public init(field: String, problem: String) {
            self.field = field
            self.problem = problem
        }
        public var description: String { "\(field): \(problem)" }
    }

    /// The longest IPVS timeout: the kernel refuses more than `INT_MAX / HZ` seconds (HZ at most 1000).
    public static let ipvsTimeoutLimit: Duration = .seconds(Int32.max / 1000)

    /// An IPVS timeout (`--ipvs-tcp-timeout`, `ipvs.udpTimeout`, …): not negative, at most `ipvsTimeoutLimit`.
    public static func checkIPVSTimeout(_ value: Duration, field: String) throws(Error) -> Duration {
        guard value >= .zero, value <= ipvsTimeoutLimit else {
            throw Error(field: field, problem: "\(GoDuration.format(value)) is not between 0s and "
                        + "\(GoDuration.format(ipvsTimeoutLimit)) (the kernel's limit)")
        }
        return value
    }

    /// Parses the `--cluster-cidr` flag value (comma-separated).
    public static func parseCIDRs(_ text: String, field: String = "--cluster-cidr") throws(Error) -> [IPCIDR] {
        try text.split(separator: ",").map { part throws(Error) -> IPCIDR in
            let trimmed = part.trimmingSpaces
            guard let cidr = IPCIDR(trimmed) else { throw Error(field: field, problem: "\(String(reflecting: trimmed)) is not a CIDR") }
            return cidr
        }
    }

    /// Parses a bind-address flag value: `ip:port`, `[ipv6]:port`, a bare IP (with
    /// `defaultPort`), or "" (disabled).
    public static func parseBindAddress(_ text: String, defaultPort: Int, field: String) throws(Error) -> BindAddress? {
        if text.isEmpty { return nil }
        guard let address = BindAddress(parsing: text, defaultPort: defaultPort) else {
            throw Error(field: field, problem: "\(String(reflecting: text)) is not an IP:port address")
        }
        return address
    }

    /// Reads a `KubeProxyConfiguration` (`kubeproxy.config.k8s.io/v1alpha1`; the v1alpha2
    /// top-level `syncPeriod`/`minSyncPeriod` are read too). Fields Strait does not use come back
    /// as warnings; values it cannot read throw.
    public static func load(yaml text: String) throws -> (configuration: ProxyConfiguration, warnings: [String]) {
        guard let node = try Yams.compose(yaml: text), let mapping = node.mapping else {
            throw Error(field: "(document)", problem: "expected a KubeProxyConfiguration mapping")
        }
        var config = ProxyConfiguration()
        var warnings: [String] = []

        func string(_ value: Yams.Node, _ field: String) throws(Error) -> String {
            guard let scalar = value.scalar else { throw Error(field: field, problem: "expected a string") }
            return scalar.string
        }
        func duration(_ value: Yams.Node, _ field: String) throws(Error) -> Duration {
            let text = try string(value, field)
            guard let duration = GoDuration.parse(text) else {
                throw Error(field: field, problem: "\(String(reflecting: text)) is not a duration (like 30s, 1m0s)")
            }
            return duration
        }
        func bool(_ value: Yams.Node, _ field: String) throws(Error) -> Bool {
            switch try string(value, field) {
            case "true", "True", "TRUE": return true
            case "false", "False", "FALSE": return false
            case let other: throw Error(field: field, problem: "\(String(reflecting: other)) is not true or false")
            }
        }

        func isNull(_ value: Yams.Node) -> Bool {
            guard let scalar = value.scalar, scalar.style == .plain else { return false }
            return scalar.string == "null" || scalar.string == "~" || scalar.string.isEmpty
        }
        /// A sync period of 0 takes the default, as kube-proxy's defaulting does.
        func period(_ value: Yams.Node, _ field: String, _ current: Duration) throws(Error) -> Duration {
            let period = try duration(value, field)
            return period == .zero ? current : period
        }
        /// A bind address of "" in the file takes the default (only the flag's "" disables the server).
        func bindAddress(_ value: Yams.Node, _ field: String, _ current: BindAddress?,
                         port: Int) throws(Error) -> BindAddress? {
            let text = try string(value, field)
            return text.isEmpty ? current : try parseBindAddress(text, defaultPort: port, field: field)
        }
        func integer(_ value: Yams.Node, _ field: String, _ range: ClosedRange<Int>) throws(Error) -> Int {
            let text = try string(value, field)
            guard let number = Int(text), range.contains(number) else {
                throw Error(field: field, problem: "\(String(reflecting: text)) is not a number in \(range)")
            }
            return number
        }
        /// Reads a nested mapping; `read` returns false for a field Strait does not implement,
        /// which warns unless it holds kube-proxy's default.
        func section(_ value: Yams.Node, _ key: String,
                     _ read: (String, Yams.Node, String) throws(Error) -> Bool) throws(Error) {
            guard let inner = value.mapping else { throw Error(field: key, problem: "expected a mapping") }
            for (innerKey, innerValue) in inner where !isNull(innerValue) {
                let name = innerKey.string ?? ""
                let field = "\(key).\(name)"
                if try read(name, innerValue, field) { continue }
                if !isKubeProxyDefault(innerValue, at: [key, name]) {
                    warnings.append("\(field) is not supported by Strait; ignored")
                }
            }
        }

        for (keyNode, value) in mapping {
            let key = keyNode.string ?? ""
            // kube-proxy defaults a field left null, as kubeadm writes the ones it does not set.
            if isNull(value) { continue }
            switch key {
            case "apiVersion":
                let version = try string(value, key)
                guard version.hasPrefix("kubeproxy.config.k8s.io/") else {
                    throw Error(field: key, problem: "\(String(reflecting: version)) is not kubeproxy.config.k8s.io/v1alpha1")
                }
                if version != "kubeproxy.config.k8s.io/v1alpha1" && version != "kubeproxy.config.k8s.io/v1alpha2" {
                    warnings.append("apiVersion \(version) is not v1alpha1; reading it as v1alpha1")
                }
            case "kind":
                let kind = try string(value, key)
                guard kind == "KubeProxyConfiguration" else {
                    throw Error(field: key, problem: "\(String(reflecting: kind)) is not KubeProxyConfiguration")
                }
            case "mode":
                let text = try string(value, key)
                if text.isEmpty { break }
                guard let mode = ProxyMode(rawValue: text) else {
                    throw Error(field: key, problem: "\(String(reflecting: text)) is not a proxy mode (iptables, nftables, ipvs)")
                }
                config.mode = mode
            case "hostnameOverride":
                let text = try string(value, key)
                config.hostnameOverride = text.isEmpty ? nil : text
            case "clusterCIDR":
                let text = try string(value, key)
                config.clusterCIDRs = try parseCIDRs(text, field: key)
            case "bindAddress":
                config.bindAddress = try string(value, key)
            case "metricsBindAddress":
                config.metricsBindAddress = try bindAddress(value, key, config.metricsBindAddress, port: 10249)
            case "healthzBindAddress":
                config.healthzBindAddress = try bindAddress(value, key, config.healthzBindAddress, port: 10256)
            case "nodePortAddresses":
                if value.scalar?.string == "null" || value.scalar?.string == "" { break }
                guard let items = value.sequence else { throw Error(field: key, problem: "expected a list") }
                config.nodePortAddresses = try items.enumerated().map { (i, item) throws(Error) in
                    try string(item, "\(key)[\(i)]")
                }
            case "clientConnection":
                guard let inner = value.mapping else { throw Error(field: key, problem: "expected a mapping") }
                for (innerKey, innerValue) in inner {
                    let name = innerKey.string ?? ""
                    let field = "clientConnection.\(name)"
                    let text = try string(innerValue, field)
                    switch name {
                    case "kubeconfig": config.clientConnection.kubeconfig = text.isEmpty ? nil : text
                    case "contentType":
                        let isDefault = text.isEmpty || text == ClientConnection.kubeProxyContentType
                        config.clientConnection.contentType = isDefault ? nil : text
                    case "acceptContentTypes":
                        if !text.isEmpty && text != "application/json" {
                            warnings.append("\(field) \(text): Strait accepts application/json only")
                        }
                    case "qps":
                        guard let qps = Double(text), qps >= 0 else { throw Error(field: field, problem: "expected a number") }
                        config.clientConnection.qps = qps == 0 || qps == ClientConnection.kubeProxyQPS ? nil : qps
                    case "burst":
                        guard let burst = Int(text), burst >= 0 else { throw Error(field: field, problem: "expected a whole number") }
                        config.clientConnection.burst = burst == 0 || burst == ClientConnection.kubeProxyBurst ? nil : burst
                    default: warnings.append("\(field) is not supported by Strait; ignored")
                    }
                }
            case "syncPeriod": config.syncPeriod = try period(value, key, config.syncPeriod)
            case "minSyncPeriod": config.minSyncPeriod = try duration(value, key)
            case "bindAddressHardFail": config.bindAddressHardFail = try bool(value, key)
            case "detectLocalMode":
                let text = try string(value, key)
                if !text.isEmpty && text != "ClusterCIDR" {
                    warnings.append("detectLocalMode \(text) is not supported by Strait "
                                    + "(it detects local traffic by clusterCIDR); ignored")
                }
            case "iptables":
                try section(value, key) { name, inner, field throws(Error) in
                    switch name {
                    case "masqueradeAll": config.masqueradeAll = try bool(inner, field)
                    case "masqueradeBit": config.masqueradeBit = try integer(inner, field, 0...31)
                    case "syncPeriod": config.syncPeriod = try period(inner, field, config.syncPeriod)
                    case "minSyncPeriod": config.minSyncPeriod = try duration(inner, field)
                    default: return false
                    }
                    return true
                }
            case "ipvs":
                try section(value, key) { name, inner, field throws(Error) in
                    switch name {
                    case "scheduler":
                        let text = try string(inner, field)
                        config.ipvsScheduler = text.isEmpty ? "rr" : text
                    case "strictARP": config.ipvsStrictARP = try bool(inner, field)
                    case "tcpTimeout":
                        config.ipvsTCPTimeout = try checkIPVSTimeout(duration(inner, field), field: field)
                    case "tcpFinTimeout":
                        config.ipvsTCPFinTimeout = try checkIPVSTimeout(duration(inner, field), field: field)
                    case "udpTimeout":
                        config.ipvsUDPTimeout = try checkIPVSTimeout(duration(inner, field), field: field)
                    default: return false
                    }
                    return true
                }
            case "conntrack":
                try section(value, key) { name, inner, field throws(Error) in
                    switch name {
                    case "maxPerCore": config.conntrack.maxPerCore = try integer(inner, field, 0...Int(Int32.max))
                    case "min": config.conntrack.min = try integer(inner, field, 0...Int(Int32.max))
                    case "tcpBeLiberal": config.conntrack.tcpBeLiberal = try bool(inner, field)
                    case "tcpCloseWaitTimeout": config.conntrack.tcpCloseWaitTimeout = try duration(inner, field)
                    case "tcpEstablishedTimeout": config.conntrack.tcpEstablishedTimeout = try duration(inner, field)
                    case "udpTimeout": config.conntrack.udpTimeout = try duration(inner, field)
                    case "udpStreamTimeout": config.conntrack.udpStreamTimeout = try duration(inner, field)
                    default: return false
                    }
                    return true
                }
            case "logging":
                try section(value, key) { name, inner, field throws(Error) in
                    guard name == "verbosity" else { return false }
                    config.verbosity = try integer(inner, field, 0...Int(Int32.max))
                    return true
                }
            default:
                if value.mapping != nil {
                    try section(value, key) { _, _, _ in false }
                } else if !isKubeProxyDefault(value, at: [key]) {
                    warnings.append("\(key) is not supported by Strait; ignored")
                }
            }
        }
        return (config, warnings)
    }
}

/// Go's `time.ParseDuration`: `30s`, `1m0s`, `1h30m`, `500ms`, `1.5s`, `10us`, `0`.
public enum GoDuration {
    public static func parse(_ text: String) -> Duration? {
        var rest = Substring(text)
        var negative = false
        if rest.hasPrefix("-") || rest.hasPrefix("+") {
            negative = rest.first == "-"
            rest = rest.dropFirst()
        }
        if rest == "0" { return .zero }
        guard !rest.isEmpty else { return nil }
        var total: Double = 0
        while !rest.isEmpty {
            let number = rest.prefix { $0.isNumber || $0 == "." }
            guard !number.isEmpty, let value = Double(number) else { return nil }
            rest = rest.dropFirst(number.count)
            let unit = rest.prefix { !$0.isNumber && $0 != "." }
            rest = rest.dropFirst(unit.count)
            let scale: Double
            switch unit {
            case "ns": scale = 1e-9
            case "us", "µs", "μs": scale = 1e-6
            case "ms": scale = 1e-3
            case "s": scale = 1
            case "m": scale = 60
            case "h": scale = 3600
            default: return nil
            }
            total += value * scale
        }
        let nanoseconds = Int64((total * 1e9).rounded())
        return .nanoseconds(negative ? -nanoseconds : nanoseconds)
    }
}

extension Substring {
    fileprivate var trimmingSpaces: String {
        String(drop { $0 == " " }.reversed().drop { $0 == " " }.reversed())
    }
}

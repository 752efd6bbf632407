import StraitModel
import StraitStore

/// What `strait overlay` was told on its command line. Optional values were not given, so the
/// stored network config (or the default) decides. Defaults are flanneld's.
public struct OverlayOptions: Sendable, Hashable {
    public var store: String
    public var tls: EtcdTLSFiles?
    /// `--etcd-prefix`: where the config and leases live (`/coreos.com/network` is flannel's).
    public var layout: KeyLayout
    /// `--iface`, in order: interface names or addresses; the first that exists is the underlay.
    public var interfaces: [String]
    /// `--iface-regex`, in order: matched against interface names, then their addresses.
    public var interfaceRegexes: [String]
    /// `--iface-can-reach`: the underlay is the interface the route to this address leaves by.
    public var interfaceCanReach: String?
    public var publicIP: String?
    /// `--public-ipv6`: this node's IPv6 underlay address on a dual-stack network.
    public var publicIPv6: String?
    public var clusterCIDR: String?
    public var subnetLength: Int?
    public var subnetFile: String
    /// The names the subnet file is written with; nil picks flannel's for a path ending in
    /// `flannel/subnet.env`, Strait's otherwise.
    public var subnetFileNaming: SubnetFile.Naming?
    public var backend: BackendType?
    public var vni: UInt32?
    public var vxlanPort: UInt16?
    /// `--ip-masq`: masquerade pod traffic leaving the cluster network (flannel's default: off).
    public var ipMasq: Bool
    /// `--iptables-forward-rules`: accept the pod network in the FORWARD chain (default on).
    public var forwardRules: Bool
    /// `--ip-blackhole-route`: a blackhole route for this node's subnet, so packets to unassigned
    /// pod addresses are dropped here instead of following the default route.
    public var blackholeRoute: Bool
    /// `--subnet-lease-renew-margin`: renew this many minutes before the lease expires (1-1439).
    public var renewMarginMinutes: Int
    /// `--healthz-ip` and `--healthz-port`; port 0 serves nothing.
    public var healthzIP: String
    public var healthzPort: Int
    public var leaseTTL: Int64

    public static let defaultSubnetFile = "/run/strait/subnet.env"

    public init(store: String = SQLiteStore.defaultPath, tls: EtcdTLSFiles? = nil, layout: KeyLayout = .strait,
                interfaces: [String] = [], interfaceRegexes: [String] = [], interfaceCanReach: String? = nil,
                publicIP: String? = nil, publicIPv6: String? = nil, clusterCIDR: String? = nil, subnetLength: Int? = nil,
                subnetFile: String = defaultSubnetFile, subnetFileNaming: SubnetFile.Naming? = nil,
                backend: BackendType? = nil, vni: UInt32? = nil, vxlanPort: UInt16? = nil, ipMasq: Bool = false,
                forwardRules: Bool = true, blackholeRoute: Bool = false, renewMarginMinutes: Int = 60,
                healthzIP: String = "0.0.0.0", healthzPort: Int = 0, leaseTTL: Int64 = SubnetLeaser.defaultTTL) {
        self.store = store
        self.tls = tls
        self.layout = layout
        self.interfaces = interfaces
        self.interfaceRegexes = interfaceRegexes
        self.interfaceCanReach = interfaceCanReach
        self.publicIP = publicIP
        self.publicIPv6 = publicIPv6
        self.clusterCIDR = clusterCIDR
        self.subnetLength = subnetLength
        self.subnetFile = subnetFile
        self.subnetFileNaming = subnetFileNaming
        self.backend = backend
        self.vni = vni
        self.vxlanPort = vxlanPort
        self.ipMasq = ipMasq
        self.forwardRules = forwardRules
        self.blackholeRoute = blackholeRoute
        self.renewMarginMinutes = renewMarginMinutes
        self.healthzIP = healthzIP
        self.healthzPort = healthzPort
        self.leaseTTL = leaseTTL
    }

    /// The names the subnet file gets: as told, else flannel's for flannel's path.
    public var effectiveSubnetFileNaming: SubnetFile.Naming {
        subnetFileNaming ?? (subnetFile.hasSuffix("flannel/subnet.env") ? .flannel : .strait)
    }

    /// How long after a renewal the next one is due: the margin before expiry, as flannel renews;
    /// a quarter of the TTL when the margin is as long as the TTL (short test TTLs).
    public var renewInterval: Duration {
        let seconds = leaseTTL - Int64(renewMarginMinutes) * 60
        return .seconds(max(1, seconds > 0 ? seconds : leaseTTL / 4))
    }

    /// Refuses values flannel refuses, naming the flag.
    public func validate() throws(OverlayError) {
        guard (1...1439).contains(renewMarginMinutes) else {
            throw OverlayError(.invalidConfig,
                               "--subnet-lease-renew-margin \(renewMarginMinutes) is not between 1 and 1439 minutes")
        }
        guard (0...65535).contains(healthzPort) else {
            throw OverlayError(.invalidConfig, "--healthz-port \(healthzPort) is not a TCP port")
        }
        if healthzPort != 0, (try? IPAddress(parsing: healthzIP)) == nil {
            throw OverlayError(.invalidConfig, "--healthz-ip \(healthzIP) is not an IP address")
        }
        for pattern in interfaceRegexes where (try? Regex(pattern)) == nil {
            throw OverlayError(.invalidConfig, "--iface-regex \(pattern) is not a regular expression")
        }
        if let target = interfaceCanReach, (try? IPv4Address(parsing: target)) == nil {
            throw OverlayError(.invalidConfig, "--iface-can-reach \(target) is not an IPv4 address")
        }
    }
}

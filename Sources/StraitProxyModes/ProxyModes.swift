#if canImport(Glibc)
import Glibc
#endif
import StraitModel
import StraitProxy
import StraitNetlink
import StraitProxyIPTables
import StraitProxyNFTables
import StraitNFT
import StraitProxyIPVS

/// The one place a `--proxy-mode` becomes a backend: one per IP family the node runs, joined by
/// `DualStackBackend` when there are two.
public enum ProxyModes {
    /// What the modes are built from, besides the mode.
    public struct Settings: Sendable {
        public var options: ProxyOptions
        /// The families to program, IPv4 first (see `ProxyModes.hostFamilies`).
        public var families: [IPFamily]
        /// iptables mode: the `nft` or `legacy` binaries.
        public var iptablesFlavor: IPTablesFlavor
        /// IPVS mode: `--ipvs-scheduler` (one of `IPVSSettings.schedulers`).
        public var ipvsScheduler: String
        /// IPVS mode: `--ipvs-strict-arp`.
        public var ipvsStrictARP: Bool
        /// IPVS mode: `--ipvs-tcp-timeout`, `--ipvs-tcpfin-timeout`, `--ipvs-udp-timeout`.
        public var ipvsTimeouts: IPVSTimeouts
        /// Tests: run the mode's tools in this named network namespace.
        public var namespace: String?
        /// `--iptables-masquerade-bit`: the fwmark bit of packets to masquerade.
        public var masqueradeBit: Int
        /// Where each family's backend records what only it knows (restore failures, rule counts);
        /// the same the `ProxyRunner` serves.
        public var metrics: ProxyMetrics?

        public init(options: ProxyOptions, families: [IPFamily] = [.ipv4], iptablesFlavor: IPTablesFlavor = .nft,
                    ipvsScheduler: String = "rr", ipvsStrictARP: Bool = false,
                    ipvsTimeouts: IPVSTimeouts = IPVSTimeouts(), namespace: String? = nil,
                    masqueradeBit: Int = 14, metrics: ProxyMetrics? = nil) {
            self.options = options
            self.families = families
            self.iptablesFlavor = iptablesFlavor
            self.ipvsScheduler = ipvsScheduler
            self.ipvsStrictARP = ipvsStrictARP
            self.ipvsTimeouts = ipvsTimeouts
            self.namespace = namespace
            self.masqueradeBit = masqueradeBit
            self.metrics = metrics
        }
    }

    /// A mode this build cannot run, and why.
    public struct Unavailable: Error, CustomStringConvertible {
        public var mode: ProxyMode
        public var reason: String
        public var description: String { "--proxy-mode \(mode.rawValue) is not available: \(reason)" }
    }

    public static func backend(_ mode: ProxyMode, _ settings: Settings) throws -> any ProxyBackend {
        let perFamily: [any ProxyBackend]
        switch mode {
        case .iptables:
            perFamily = settings.families.map { family in
                IPTablesBackend(options: IPTablesRuleOptions(family: family, proxy: settings.options,
                                                             masqueradeBit: settings.masqueradeBit),
                                tools: IPTablesRestore(flavor: settings.iptablesFlavor, family: family,
                                                       namespace: settings.namespace),
                                metrics: settings.metrics?.family(family))
            }
        case .nftables:
            // One netlink socket serves both families' tables (its calls are serialized).
            let kernel = try settings.namespace.map { try NFTConnection(namespace: $0) } ?? NFTConnection()
            perFamily = settings.families.map {
                NFTablesBackend(family: $0, options: settings.options, kernel: kernel, keepsLastTransaction: false)
            }
        case .ipvs:
            guard IPVSSettings.schedulers.contains(settings.ipvsScheduler) else {
                throw Unavailable(mode: mode, reason: "--ipvs-scheduler \(settings.ipvsScheduler): unknown scheduler ("
                    + IPVSSettings.schedulers.joined(separator: ", ") + ")")
            }
            let ipvs = IPVSSettings(scheduler: settings.ipvsScheduler, strictARP: settings.ipvsStrictARP,
                                    timeouts: settings.ipvsTimeouts, options: settings.options,
                                    namespace: settings.namespace)
            do {
                perFamily = try settings.families.map { try IPVSBackend(family: $0, settings: ipvs) }
            } catch let error as NetlinkError where error.code == .familyNotFound {
                throw Unavailable(mode: mode, reason: "this kernel has no IPVS; see scripts/vm")
            }
        }
        return perFamily.count == 1 ? perFamily[0] : DualStackBackend(perFamily)
    }

    /// The families this host can program: IPv4, and IPv6 when the kernel has it
    /// (`/proc/net/if_inet6` exists, as it does unless IPv6 is disabled).
    public static func hostFamilies() -> [IPFamily] {
        access("/proc/net/if_inet6", F_OK) == 0 ? [.ipv4, .ipv6] : [.ipv4]
    }
}

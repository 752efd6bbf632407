#if canImport(Glibc)
import Glibc
#endif
import StraitModel
import StraitProxy
import StraitProxyIPTables

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
        /// Tests: run the mode's tools in this named network namespace.
        public var namespace: String?
        /// `--iptables-masquerade-bit`: the fwmark bit of packets to masquerade.
        public var masqueradeBit: Int
        /// Where each family's backend records what only it knows (restore failures, rule counts);
        /// the same the `ProxyRunner` serves.
        public var metrics: ProxyMetrics?

        public init(options: ProxyOptions, families: [IPFamily] = [.ipv4], iptablesFlavor: IPTablesFlavor = .nft,
                    namespace: String? = nil, masqueradeBit: Int = 14, metrics: ProxyMetrics? = nil) {
            self.options = options
            self.families = families
            self.iptablesFlavor = iptablesFlavor
            self.namespace = namespace
            self.masqueradeBit = masqueradeBit
            self.metrics = metrics
        }
    }

    /// A mode this build cannot run, and why.
    public struct Unavailable: Error, CustomStringConvertible {
        public var mode: ProxyMode
        public var reason: String
        public var description: String { "--proxy-mode \(mode.rawValue) is not available yet: \(reason)" }
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
        case .nftables, .ipvs:
            throw Unavailable(mode: mode, reason: "this Strait has the iptables mode only")
        }
        return perFamily.count == 1 ? perFamily[0] : DualStackBackend(perFamily)
    }

    /// The families this host can program: IPv4, and IPv6 when the kernel has it
    /// (`/proc/net/if_inet6` exists, as it does unless IPv6 is disabled).
    public static func hostFamilies() -> [IPFamily] {
        access("/proc/net/if_inet6", F_OK) == 0 ? [.ipv4, .ipv6] : [.ipv4]
    }
}

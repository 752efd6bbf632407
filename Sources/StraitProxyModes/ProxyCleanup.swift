#if canImport(Glibc)
import Glibc
#endif
import StraitModel
import StraitNFT
import StraitNetlink
import StraitProxy
import StraitProxyIPTables
import StraitProxyIPVS
import StraitProxyNFTables

/// `strait proxy --cleanup`: removes what every mode may have left, whatever mode is configured (as
/// kube-proxy's `--cleanup` does), so a node switched from one mode to another keeps no stale rules.
/// Per family: the iptables mode's chains and jumps, the nftables table `strait`, and the IPVS
/// mode's virtual services, helper table `strait-ipvs` and device `kube-ipvs0`.
public enum ProxyCleanup {
    /// What was removed (mode: what), for the log.
    public static func run(_ settings: ProxyModes.Settings) async throws -> [String] {
        var removed: [String] = []
        for family in settings.families {
            let iptables = IPTablesBackend(
                options: IPTablesRuleOptions(family: family, proxy: settings.options,
                                             masqueradeBit: settings.masqueradeBit),
                tools: IPTablesRestore(flavor: settings.iptablesFlavor, family: family, namespace: settings.namespace))
            try await iptables.cleanup()
            removed.append("iptables (\(settings.iptablesFlavor), \(family)) chains")
        }
        let nft = try settings.namespace.map { try NFTConnection(namespace: $0) } ?? NFTConnection()
        for family in settings.families {
            let backend = NFTablesBackend(family: family, options: settings.options, kernel: nft)
            if try nft.list(backend.table) != nil { removed.append("nftables \(backend.table)") }
            try await backend.cleanup()
        }
        removed += try await ipvs(settings, nft: nft)
        return removed
    }

    /// The IPVS mode's leftovers. With IPVS in the kernel (`/proc/net/ip_vs` exists once the module
    /// is loaded) its backend cleans up, virtual services included; without it there can be no
    /// virtual services, only the helper tables and the device, removed here without loading a
    /// module. Equivalent: `nft delete table ip strait-ipvs; ip link del kube-ipvs0`.
    private static func ipvs(_ settings: ProxyModes.Settings, nft: NFTConnection) async throws -> [String] {
        let helperTables = settings.families.map { IPVSHelperRules.table($0) }
        var present: [Table] = []
        for table in helperTables { if try nft.list(table) != nil { present.append(table) } }
        var removed = present.map { "nftables \($0)" }
        let links = try NetlinkSocket(.route, namespace: settings.namespace)
        let device = (try? links.link(named: IPVSBackend.device)) != nil
        if device { removed.append("device \(IPVSBackend.device)") }
        if access("/proc/net/ip_vs", F_OK) == 0 {
            let ipvs = IPVSSettings(scheduler: settings.ipvsScheduler, strictARP: settings.ipvsStrictARP,
                                    options: settings.options, namespace: settings.namespace)
            for family in settings.families { try await IPVSBackend(family: family, settings: ipvs).cleanup() }
        }
        var transaction = Transaction()
        for table in helperTables { if try nft.list(table) != nil { transaction.delete(table) } }
        if !transaction.isEmpty { try nft.commit(transaction) }
        if device, (try? links.link(named: IPVSBackend.device)) != nil {
            try links.deleteLink(named: IPVSBackend.device)
        }
        return removed
    }
}

import StraitModel
import StraitNFT
import StraitProxy
import StraitProxyIPTables
import StraitProxyNFTables
import StraitTestSupport
import Testing

/// A proxy mode the real-packet suite runs in: iptables (of one flavor) or nftables. The IPVS mode
/// has its own suite (this kernel has no IPVS; scripts/vm runs it).
enum ProxyDataplane: Sendable, CustomTestStringConvertible {
    case iptables(IPTablesFlavor)
    case nftables

    /// Each mode once (iptables in the host's flavor).
    static let modes: [ProxyDataplane] = [.iptables(.hostDefault()), .nftables]
    /// Each mode, iptables in both flavors.
    static let everyFlavor: [ProxyDataplane] = IPTablesFlavor.allCases.map { .iptables($0) } + [.nftables]

    var mode: ProxyMode {
        switch self {
        case .iptables: .iptables
        case .nftables: .nftables
        }
    }

    var testDescription: String {
        switch self {
        case .iptables(let flavor): "iptables (\(flavor))"
        case .nftables: "nftables"
        }
    }

    /// What the mode's listing shows for a Service port's endpoint selection.
    var serviceMarker: String {
        switch self {
        case .iptables: "KUBE-SVC-"
        case .nftables: "chain pool-size-"
        }
    }

    /// What the mode's listing shows while `name`, a plain ClusterIP port (no affinity, no external
    /// stage), is programmed: iptables its cluster chain; nftables, where such a port owns no chain,
    /// its dispatch element to the shape chain of its pool size.
    func clusterChain(_ name: ServicePortName, clusterIP: String = "10.96.0.10", port: UInt16 = 80) -> String {
        switch self {
        case .iptables: IPTablesChainName.cluster(name)
        case .nftables: "\(clusterIP) . \(name.protocol.rawValue.lowercased()) . \(port) : goto pool-size-"
        }
    }
}

extension ProxyTopology {
    /// The backend of `dataplane` for one family, programming the node namespace.
    func backend(_ dataplane: ProxyDataplane, family: IPFamily = .ipv4,
                 options: ProxyOptions = ProxyTopology.options()) throws -> any ProxyBackend {
        switch dataplane {
        case .iptables(let flavor): return backend(flavor: flavor, family: family, options: options)
        case .nftables: return try nftBackend(family: family, options: options)
        }
    }

    /// One backend of `dataplane` per family behind one sync (kube-proxy's metaproxier).
    func dualStackBackend(_ dataplane: ProxyDataplane) throws -> DualStackBackend {
        DualStackBackend([try backend(dataplane, family: .ipv4), try backend(dataplane, family: .ipv6)])
    }

    /// The nftables mode for one family, programming the node namespace over netlink.
    func nftBackend(family: IPFamily = .ipv4,
                    options: ProxyOptions = ProxyTopology.options()) throws -> NFTablesBackend {
        NFTablesBackend(family: family, options: options, kernel: try NFTConnection(namespace: node.name))
    }

    /// What `dataplane` programmed in the node for `family`: `iptables-save`, or `nft list table
    /// FAMILY strait` ("" when the table does not exist).
    func programmed(_ dataplane: ProxyDataplane, family: IPFamily = .ipv4) throws -> String {
        switch dataplane {
        case .iptables(let flavor): return try saved(flavor: flavor, family: family)
        case .nftables:
            let nftFamily = family == .ipv4 ? "ip" : "ip6"
            let listing = try node.output(["nft", "list", "table", nftFamily, "strait"])
            if listing.succeeded { return listing.stdout }
            // No table is the one failure that means "nothing programmed"; nft failing on a table is a defect.
            guard try NFTConnection(namespace: node.name).list(Table(family == .ipv4 ? .ip : .ip6, "strait")) == nil
            else { throw CommandFailure(arguments: ["nft", "list", "table", nftFamily, "strait"], output: listing,
                                        reason: "nft cannot list the table") }
            return ""
        }
    }

    /// Whether anything of Strait's is left in `dataplane`'s tables of `family`.
    func holdsStraitRules(_ dataplane: ProxyDataplane, family: IPFamily = .ipv4) throws -> Bool {
        let listing = try programmed(dataplane, family: family)
        switch dataplane {
        case .iptables: return listing.contains("KUBE-")
        case .nftables: return !listing.isEmpty
        }
    }

    /// `nft list table FAMILY strait` in the node namespace.
    func nftTable(_ family: IPFamily = .ipv4) throws -> String {
        try node.run(["nft", "list", "table", family == .ipv4 ? "ip" : "ip6", "strait"])
    }
}

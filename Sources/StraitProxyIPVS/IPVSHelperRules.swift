import StraitModel
import StraitNFT
import StraitProxy

/// The packet-filter rules the IPVS mode needs beside its virtual services, which kube-proxy makes
/// with iptables and ipset, here in one nftables table per family (`ip strait-ipvs`, `ip6 strait-ipvs`),
/// rewritten whole in one transaction when they change. Only what the plans say:
/// - masquerade: traffic to a cluster IP from outside the pod network (`clusterIPMasquerade`) and
///   external traffic of an `externalTrafficPolicy: Cluster` port (`externalStage.masqueradeAll`)
///   is marked before IPVS sees it and masqueraded after it forwarded it;
/// - hairpin: an endpoint reaching itself through its Service is masqueraded;
/// - `loadBalancerSourceRanges`: other sources to a load-balancer IP are dropped;
/// - a rejected or dropped address is rejected or dropped before IPVS (the address sits on the dummy
///   device, so without a rule the host's own stack would answer).
///
/// Equivalent (IPv4):
///
///     table ip strait-ipvs {
///         chain prerouting { type filter hook prerouting priority mangle; <marks> }
///         chain output { type filter hook output priority mangle; <marks> <fates> <firewall> }
///         chain input { type filter hook input priority filter; <fates> <firewall> }
///         chain postrouting { type nat hook postrouting priority srcnat;
///             meta mark & 0x4000 == 0x4000 masquerade; <hairpin> }
///     }
public struct IPVSHelperRules: Sendable, Hashable {
    public static let tableName = "strait-ipvs"
    /// The bit marking a packet for masquerade (kube-proxy's `KUBE-MARK-MASQ` bit).
    public static let masqueradeMark: UInt32 = 0x4000

    public let table: Table
    public private(set) var rules: [Rule] = []

    /// The rules for one family's `plans`; `nodeAddresses` are the addresses node ports answer on.
    public init(family: IPFamily, plans: [ServicePortPlan], nodeAddresses: [IPAddress]) {
        table = Self.table(family)
        let rules = RuleBuilder(family: family, table: table)
        var marks: [[Expression]] = []
        var fates: [[Expression]] = []
        var firewall: [[Expression]] = []
        var hairpin: [[Expression]] = []
        var hairpinSeen: Set<ProxyEndpoint> = []
        for plan in plans {
            guard let l4 = L4Proto(plan.protocol) else { continue }
            func fate(_ address: IPAddress, _ port: UInt16, _ traffic: TrafficFate) {
                let target = rules.target(address, l4, port)
                switch traffic {
                case .forward: break
                case .drop: fates.append(target + .drop)
                case .reject: fates.append(target + .reject(rules.reject))
                }
            }
            for address in plan.clusterIPs {
                fate(address, plan.port, plan.clusterIPTraffic)
                guard case .forward = plan.clusterIPTraffic else { continue }
                switch plan.clusterIPMasquerade {
                case .none: break
                case .all: marks.append(rules.target(address, l4, plan.port) + .setMark(or: Self.masqueradeMark))
                case .outside(let podNetwork):
                    marks.append(rules.target(address, l4, plan.port) + rules.source(podNetwork, negated: true)
                                 + .setMark(or: Self.masqueradeMark))
                }
            }
            if let external = plan.externalTraffic {
                var targets = (plan.externalIPs + plan.loadBalancerIPs).map { ($0, plan.port) }
                if let nodePort = plan.nodePort {
                    targets += nodeAddresses.filter { $0.family == family }.map { ($0, nodePort) }
                }
                for (address, port) in targets {
                    fate(address, port, external)
                    if case .forward = external, plan.externalStage?.masqueradeAll == true {
                        marks.append(rules.target(address, l4, port) + .setMark(or: Self.masqueradeMark))
                    }
                }
                if let allowed = plan.firewall?.allowedSources {
                    for address in plan.loadBalancerIPs {
                        let target = rules.target(address, l4, plan.port)
                        firewall += allowed.filter { $0.family == family }.map { target + rules.source($0) + .accept }
                        firewall.append(target + .drop)
                    }
                }
            }
            for endpoint in plan.reachableEndpoints where hairpinSeen.insert(endpoint).inserted {
                hairpin.append(rules.hairpin(endpoint, l4) + .masquerade())
            }
        }
        let chains = Self.chains(table)
        for expressions in marks {
            self.rules.append(Rule(in: chains.prerouting, expressions))
            self.rules.append(Rule(in: chains.output, expressions))
        }
        for expressions in fates + firewall {
            self.rules.append(Rule(in: chains.output, expressions))
            self.rules.append(Rule(in: chains.input, expressions))
        }
        self.rules.append(Rule(in: chains.postrouting, .match(mark: Self.masqueradeMark, mask: Self.masqueradeMark),
                               .masquerade()))
        for expressions in hairpin { self.rules.append(Rule(in: chains.postrouting, expressions)) }
    }

    public static func table(_ family: IPFamily) -> Table { Table(family == .ipv4 ? .ip : .ip6, tableName) }

    /// The table, emptied and filled again, in one transaction.
    public var transaction: Transaction {
        var transaction = Transaction()
        transaction.add(table)
        transaction.flush(table)
        let chains = Self.chains(table)
        for chain in [chains.prerouting, chains.output, chains.input, chains.postrouting] { transaction.add(chain) }
        for rule in rules { transaction.add(rule) }
        return transaction
    }

    /// The base chains. `output` runs before IPVS's own output hook (priority -99) and `input` before
    /// its input hook (98), so a mark or a verdict comes first.
    static func chains(_ table: Table) -> (prerouting: Chain, output: Chain, input: Chain, postrouting: Chain) {
        (Chain(table: table, name: "prerouting",
               base: BaseChain(type: .filter, hook: .prerouting, priority: Priority.mangle)),
         Chain(table: table, name: "output", base: BaseChain(type: .filter, hook: .output, priority: Priority.mangle)),
         Chain(table: table, name: "input", base: BaseChain(type: .filter, hook: .input, priority: Priority.filter)),
         Chain(table: table, name: "postrouting",
               base: BaseChain(type: .nat, hook: .postrouting, priority: Priority.srcnat)))
    }
}

/// The matches of one family's rules.
private struct RuleBuilder {
    let family: IPFamily
    let table: Table

    private func destination(_ address: IPAddress) -> [Expression] {
        family == .ipv4 ? .match(ipDaddr: address.description) : .match(ip6Daddr: address.description)
    }
    private func sourceAddress(_ address: IPAddress) -> [Expression] {
        family == .ipv4 ? .match(ipSaddr: address.description) : .match(ip6Saddr: address.description)
    }
    private var saddr: KeyField { family == .ipv4 ? .ipSaddr : .ip6Saddr }
    private func datum(_ address: IPAddress) -> Datum {
        family == .ipv4 ? .ipv4(address.description) : .ipv6(address.description)
    }

    /// ICMP (ICMPv6) port unreachable, as `reject` means in an ip (ip6) table.
    var reject: RejectKind { family == .ipv4 ? .icmp(code: 3) : .icmpv6(code: 4) }

    /// `ip daddr ADDRESS meta l4proto PROTO th dport PORT`
    func target(_ address: IPAddress, _ l4: L4Proto, _ port: UInt16) -> [Expression] {
        destination(address) + .match(l4proto: l4) + .match(thDport: port)
    }

    /// `ip saddr [!=] NETWORK/LENGTH`
    func source(_ network: IPCIDR, negated: Bool = false) -> [Expression] {
        .match(saddr, inPrefix: datum(network.network), length: network.prefixLength, negated: negated)
    }

    /// `ip saddr E ip daddr E meta l4proto PROTO th dport P`: an endpoint that reached itself.
    func hairpin(_ endpoint: ProxyEndpoint, _ l4: L4Proto) -> [Expression] {
        sourceAddress(endpoint.address) + target(endpoint.address, l4, endpoint.port)
    }
}

extension L4Proto {
    /// The nftables protocol of a Service port.
    init?(_ transport: TransportProtocol) {
        switch transport {
        case .tcp: self = .tcp
        case .udp: self = .udp
        case .sctp: self = L4Proto(rawValue: 132)
        default: return nil
        }
    }
}

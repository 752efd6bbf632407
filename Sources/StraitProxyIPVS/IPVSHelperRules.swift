import StraitModel
import StraitNFT
import StraitProxy

/// The packet-filter rules the IPVS mode needs beside its virtual services, which kube-proxy makes
/// with iptables and ipset, here in one nftables table per family (`ip strait-ipvs`, `ip6 strait-ipvs`).
/// Only what the plans say:
/// - masquerade: traffic to a cluster IP from outside the pod network (`clusterIPMasquerade`) and
///   external traffic of an `externalTrafficPolicy: Cluster` port (`externalStage.masqueradeAll`)
///   is marked before IPVS sees it and masqueraded after it forwarded it;
/// - hairpin: an endpoint reaching itself through its Service is masqueraded; the endpoints that may be on
///   this node are elements of the set `hairpin` (kube-proxy's `KUBE-LOOP-BACK` ipset), so an endpoint change is
///   a change of elements, not of rules;
/// - `loadBalancerSourceRanges`: other sources to a load-balancer IP are dropped;
/// - a rejected or dropped address is rejected or dropped before IPVS (the address sits on the dummy
///   device, so without a rule the host's own stack would answer).
///
/// The rules are rewritten whole, in one transaction, when they change; hairpin elements are added
/// and deleted alone. Equivalent (IPv4):
///
///     table ip strait-ipvs {
///         set hairpin { type ipv4_addr . ipv4_addr . inet_proto . inet_service; }
///         chain prerouting { type filter hook prerouting priority mangle; <marks> }
///         chain output { type filter hook output priority mangle; <marks> <fates> <firewall> }
///         chain input { type filter hook input priority filter; <fates> <firewall> }
///         chain postrouting { type nat hook postrouting priority srcnat;
///             meta mark & 0x4000 == 0x4000 masquerade
///             ip saddr . ip daddr . meta l4proto . th dport @hairpin masquerade }
///     }
public struct IPVSHelperRules: Sendable, Hashable {
    public static let tableName = "strait-ipvs"
    public static let hairpinSet = "hairpin"
    /// The bit marking a packet for masquerade (kube-proxy's `KUBE-MARK-MASQ` bit).
    public static let masqueradeMark: UInt32 = 0x4000

    public let table: Table
    /// Every rule, in chain order (the hairpin set's elements are not rules; see `hairpin`).
    public private(set) var rules: [Rule] = []
    /// The hairpin set's elements: endpoint address twice, protocol, port.
    public private(set) var hairpin: Set<Element> = []

    /// One Service port's share: what its plan adds to the chains, and its hairpin elements.
    public struct Port: Sendable, Hashable {
        /// Matches and statement of each mark rule (in prerouting and output).
        public var marks: [[Expression]] = []
        /// Of each fate and firewall rule (in output and input), in order.
        public var guards: [[Expression]] = []
        public var hairpin: Set<Element> = []

        /// The share of `plan` (one of `family`'s); `nodeAddresses` are the addresses node ports answer on.
        public init(family: IPFamily, plan: ServicePortPlan, nodeAddresses: [IPAddress]) {
            let rules = RuleBuilder(family: family)
            guard let l4 = L4Proto(plan.protocol) else { return }
            func fate(_ address: IPAddress, _ port: UInt16, _ traffic: TrafficFate) {
                let target = rules.target(address, l4, port)
                switch traffic {
                case .forward: break
                case .drop: guards.append(target + .drop)
                case .reject: guards.append(target + .reject(rules.reject))
                }
            }
            var firewall: [[Expression]] = []
            for address in plan.clusterIPs {
                fate(address, plan.port, plan.clusterIPTraffic)
                guard case .forward = plan.clusterIPTraffic else { continue }
                switch plan.clusterIPMasquerade {
                case .none: break
                case .all:
                    marks.append(rules.target(address, l4, plan.port) + .setMark(or: IPVSHelperRules.masqueradeMark))
                case .outside(let podNetwork):
                    marks.append(rules.target(address, l4, plan.port) + rules.source(podNetwork, negated: true)
                                 + .setMark(or: IPVSHelperRules.masqueradeMark))
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
                        marks.append(rules.target(address, l4, port) + .setMark(or: IPVSHelperRules.masqueradeMark))
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
            guards += firewall
            for endpoint in plan.reachableEndpoints where endpoint.mayBeOnThisNode {
                hairpin.insert(rules.hairpin(endpoint, l4))
            }
        }
    }

    /// The rules for one family's `plans`; `nodeAddresses` are the addresses node ports answer on.
    public init(family: IPFamily, plans: [ServicePortPlan], nodeAddresses: [IPAddress]) {
        self.init(family: family, ports: plans.map { Port(family: family, plan: $0, nodeAddresses: nodeAddresses) })
    }

    /// The rules of every port's share, in the order given.
    public init(family: IPFamily, ports: [Port]) {
        table = Self.table(family)
        let chains = Self.chains(table)
        for port in ports {
            for expressions in port.marks {
                rules.append(Rule(in: chains.prerouting, expressions))
                rules.append(Rule(in: chains.output, expressions))
            }
        }
        for port in ports {
            for expressions in port.guards {
                rules.append(Rule(in: chains.output, expressions))
                rules.append(Rule(in: chains.input, expressions))
            }
            hairpin.formUnion(port.hairpin)
        }
        rules.append(Rule(in: chains.postrouting, .match(mark: Self.masqueradeMark, mask: Self.masqueradeMark),
                          .masquerade()))
        let addresses: [KeyField] = family == .ipv4 ? [.ipSaddr, .ipDaddr] : [.ip6Saddr, .ip6Daddr]
        rules.append(Rule(in: chains.postrouting, .match(addresses + [.l4proto, .thDport], inSet: Self.hairpinSet),
                          .masquerade()))
    }

    public static func table(_ family: IPFamily) -> Table { Table(family == .ipv4 ? .ip : .ip6, tableName) }

    /// The hairpin set of `table`.
    public static func hairpinSet(_ table: Table) -> NFTSet {
        let address: DataType = table.family == .ip6 ? .ipv6Addr : .ipv4Addr
        return NFTSet(table: table, name: hairpinSet, keyType: [address, address, .inetProto, .inetService])
    }

    /// The table, emptied and filled again, in one transaction.
    public var transaction: Transaction {
        var transaction = Transaction()
        transaction.add(table)
        transaction.flush(table)
        let chains = Self.chains(table)
        let set = Self.hairpinSet(table)
        transaction.add(set)
        // `flush table` empties the chains only: a removed endpoint's element would stay.
        transaction.flush(set)
        if !hairpin.isEmpty {
            // In a stable order, compared value by value (no text per element: tens of thousands at 5,000 Services).
            transaction.add(hairpin.sorted(by: precedes), to: set)
        }
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

/// Orders hairpin elements (address . address . protocol . port) field by field.
private func precedes(_ a: Element, _ b: Element) -> Bool {
    for (x, y) in zip(a.key, b.key) where x != y {
        // Protocols and ports by number, addresses by their text.
        switch (x.value, y.value) {
        case (.proto(let p), .proto(let q)): return p.rawValue < q.rawValue
        case (.port(let p), .port(let q)): return p < q
        default: return x.description < y.description
        }
    }
    return a.key.count < b.key.count
}

/// The matches of one family's rules.
private struct RuleBuilder {
    let family: IPFamily

    private func destination(_ address: IPAddress) -> [Expression] {
        family == .ipv4 ? .match(ipDaddr: address.description) : .match(ip6Daddr: address.description)
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

    /// `E . E . PROTO . P`: the hairpin element of an endpoint that reaches itself.
    func hairpin(_ endpoint: ProxyEndpoint, _ l4: L4Proto) -> Element {
        Element([datum(endpoint.address), datum(endpoint.address), .proto(l4), .port(endpoint.port)])
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

import StraitModel
import StraitProxy

/// What the rules depend on besides the plans: the family this rule set is for (`iptables` or
/// `ip6tables`) and the proxy's options.
public struct IPTablesRuleOptions: Sendable, Hashable {
    public var family: IPFamily
    public var proxy: ProxyOptions
    /// Comments on per-endpoint rules; kube-proxy drops them above 1,000 endpoints to keep restores small.
    public var endpointComments: Bool
    /// `--iptables-masquerade-bit` (0–31): the fwmark bit `KUBE-MARK-MASQ` sets and
    /// `KUBE-POSTROUTING` masquerades on; 14 (`0x4000`) by default, as kube-proxy's.
    public var masqueradeBit: Int

    public init(family: IPFamily = .ipv4, proxy: ProxyOptions = ProxyOptions(), endpointComments: Bool = true,
                masqueradeBit: Int = 14) {
        precondition((0...31).contains(masqueradeBit), "the masquerade bit is one of the 32 fwmark bits")
        self.family = family
        self.proxy = proxy
        self.endpointComments = endpointComments
        self.masqueradeBit = masqueradeBit
    }

    /// The mark as iptables prints it: `0x4000` for bit 14.
    public var masqueradeMark: String { "0x" + String(UInt32(1) << UInt32(masqueradeBit), radix: 16) }
}

/// The rules of one Service port, split by where they go: its own nat chains (rewritten only when the
/// service changes) and its lines in the shared dispatch chains.
public struct IPTablesServiceRules: Sendable, Hashable {
    /// The nat chains this port owns (`KUBE-SVC/SVL/EXT/FW/SEP-…`), in the order they are written.
    public var chains: [String]
    /// The `-A CHAIN …` lines of those chains.
    public var chainRules: [String]
    /// Its lines in the shared chains (nat `KUBE-SERVICES`, nat `KUBE-NODEPORTS`, the filter chains).
    public var dispatch: IPTablesDispatch

    /// No rules at all.
    public static let none = IPTablesServiceRules(chains: [], chainRules: [], dispatch: IPTablesDispatch())
}

/// One port's lines in the chains every service shares. Kept per port so a partial sync can tell
/// whether the shared chains need rewriting at all (an endpoint change leaves them alone).
public struct IPTablesDispatch: Sendable, Hashable {
    public var natServices: [String] = []
    public var natNodePorts: [String] = []
    public var filter: [String] = []

    public init(natServices: [String] = [], natNodePorts: [String] = [], filter: [String] = []) {
        self.natServices = natServices
        self.natNodePorts = natNodePorts
        self.filter = filter
    }
}

/// Renders kube-proxy's iptables rule model as `iptables-restore` lines: pure functions of a
/// `ServicePortPlan` and the options, testable without root.
public enum IPTablesRules {
    /// The fixed nat chains and their rules (rewritten on every full sync).
    public static let natBaseChains = [IPTablesChainName.services, IPTablesChainName.nodePorts,
                                       IPTablesChainName.postrouting, IPTablesChainName.markMasquerade]
    /// The fixed filter chains; the whole filter part is small and rewritten whenever it changes.
    public static let filterBaseChains = [IPTablesChainName.services, IPTablesChainName.externalServices,
                                          IPTablesChainName.forward, IPTablesChainName.nodePorts,
                                          IPTablesChainName.proxyFirewall]

    public static func natBaseRules(_ options: IPTablesRuleOptions) -> [String] {
        let mark = options.masqueradeMark
        return [
            "-A KUBE-POSTROUTING -m mark ! --mark \(mark)/\(mark) -j RETURN",
            "-A KUBE-POSTROUTING -j MARK --xor-mark \(mark)",
            "-A KUBE-POSTROUTING -m comment --comment \"kubernetes service traffic requiring SNAT\" -j MASQUERADE --random-fully",
            "-A KUBE-MARK-MASQ -j MARK --or-mark \(mark)",
        ]
    }

    public static func filterForwardRules(_ options: IPTablesRuleOptions) -> [String] {
        let mark = options.masqueradeMark
        return [
            "-A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP",
            "-A KUBE-FORWARD -m comment --comment \"kubernetes forwarding rules\" -m mark --mark \(mark)/\(mark) -j ACCEPT",
            "-A KUBE-FORWARD -m comment --comment \"kubernetes forwarding conntrack rule\" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
        ]
    }

    /// A rule in a built-in chain that sends packets into one of Strait's chains.
    public struct Jump: Sendable, Hashable {
        public var table: String
        public var chain: String
        /// The rule without `-A CHAIN`, as `-I`, `-C` and `-D` take it.
        public var rule: String
        public var target: String
    }

    /// The jumps from the built-in chains, in kube-proxy's order (each inserted at the top).
    public static let jumps: [Jump] = {
        let newState = "-m conntrack --ctstate NEW"
        func jump(_ table: String, _ chain: String, _ match: String, _ comment: String, _ target: String) -> Jump {
            let prefix = match.isEmpty ? "" : match + " "
            return Jump(table: table, chain: chain, rule: "\(prefix)-m comment --comment \"\(comment)\" -j \(target)", target: target)
        }
        return [
            jump("filter", "INPUT", newState, "kubernetes load balancer firewall", IPTablesChainName.proxyFirewall),
            jump("filter", "INPUT", "", "kubernetes health check service ports", IPTablesChainName.nodePorts),
            jump("filter", "INPUT", newState, "kubernetes externally-visible service portals", IPTablesChainName.externalServices),
            jump("filter", "FORWARD", newState, "kubernetes load balancer firewall", IPTablesChainName.proxyFirewall),
            jump("filter", "FORWARD", "", "kubernetes forwarding rules", IPTablesChainName.forward),
            jump("filter", "FORWARD", newState, "kubernetes service portals", IPTablesChainName.services),
            jump("filter", "FORWARD", newState, "kubernetes externally-visible service portals", IPTablesChainName.externalServices),
            jump("filter", "OUTPUT", newState, "kubernetes load balancer firewall", IPTablesChainName.proxyFirewall),
            jump("filter", "OUTPUT", newState, "kubernetes service portals", IPTablesChainName.services),
            jump("nat", "PREROUTING", "", "kubernetes service portals", IPTablesChainName.services),
            jump("nat", "OUTPUT", "", "kubernetes service portals", IPTablesChainName.services),
            jump("nat", "POSTROUTING", "", "kubernetes postrouting rules", IPTablesChainName.postrouting),
        ]
    }()

    /// The last rule of nat `KUBE-SERVICES`: local destinations go on to `KUBE-NODEPORTS`, on every
    /// local address or only those inside `--nodeport-addresses`.
    public static func nodePortsTail(_ options: IPTablesRuleOptions) -> [String] {
        let comment = "-m comment --comment \"kubernetes service nodeports; NOTE: this must be the last rule in this chain\""
        let loopback = options.family == .ipv4 ? "! -d 127.0.0.0/8" : "! -d ::1/128"
        let ranges = options.proxy.nodePortRanges(options.family)
        if ranges.isEmpty {
            return ["-A KUBE-SERVICES \(comment) -m addrtype --dst-type LOCAL \(loopback) -j KUBE-NODEPORTS"]
        }
        return ranges.map { "-A KUBE-SERVICES \(comment) -d \($0.masked) -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS" }
    }

    /// Every rule of one Service port's plan. Equivalent of the per-service body of kube-proxy's
    /// `syncProxyRules` (pkg/proxy/iptables/proxier.go); every decision was made in the plan.
    public static func render(_ plan: ServicePortPlan, _ options: IPTablesRuleOptions) -> IPTablesServiceRules {
        let name = plan.name
        let svc = name.description
        let proto = IPTablesChainName.protocolName(plan.protocol)
        let match = "-m \(proto) -p \(proto)"
        let port = plan.port

        let clusterChain = IPTablesChainName.cluster(name)
        let localChain = IPTablesChainName.local(name)
        let externalChain = IPTablesChainName.external(name)
        let firewallChain = IPTablesChainName.firewall(name)
        func chain(_ pool: EndpointPool) -> String { pool == .cluster ? clusterChain : localChain }
        /// The filter rule a fate that does not forward gets (REJECT or DROP), with its comment.
        func filter(_ fate: TrafficFate?) -> (target: String, comment: String)? {
            switch fate {
            case .reject: ("REJECT", "\(svc) has no endpoints")
            case .drop: ("DROP", "\(svc) has no local endpoints")
            case .forward, nil: nil
            }
        }
        let loadBalancerChain = plan.firewall != nil ? firewallChain : externalChain

        var dispatch = IPTablesDispatch()
        for ip in plan.clusterIPs {
            if case .forward(let pool) = plan.clusterIPTraffic {
                dispatch.natServices.append(
                    "-A KUBE-SERVICES -m comment --comment \"\(svc) cluster IP\" \(match) -d \(ip) --dport \(port) -j \(chain(pool))")
            } else if let rule = filter(plan.clusterIPTraffic) {
                dispatch.filter.append("-A KUBE-SERVICES -m comment --comment \"\(rule.comment)\" \(match) -d \(ip) --dport \(port) -j \(rule.target)")
            }
        }
        let externalFilter = filter(plan.externalTraffic)
        for ip in plan.externalIPs {
            if plan.externalStage != nil {
                dispatch.natServices.append(
                    "-A KUBE-SERVICES -m comment --comment \"\(svc) external IP\" \(match) -d \(ip) --dport \(port) -j \(externalChain)")
            }
            if let externalFilter {
                dispatch.filter.append("-A KUBE-EXTERNAL-SERVICES -m comment --comment \"\(externalFilter.comment)\" \(match) -d \(ip) --dport \(port) -j \(externalFilter.target)")
            }
        }
        for ip in plan.loadBalancerIPs {
            if plan.externalStage != nil {
                dispatch.natServices.append(
                    "-A KUBE-SERVICES -m comment --comment \"\(svc) loadbalancer IP\" \(match) -d \(ip) --dport \(port) -j \(loadBalancerChain)")
            }
            if plan.firewall != nil {
                dispatch.filter.append("-A KUBE-PROXY-FIREWALL -m comment --comment \"\(svc) traffic not accepted by \(firewallChain)\" \(match) -d \(ip) --dport \(port) -j DROP")
            }
        }
        if let externalFilter {
            for ip in plan.loadBalancerIPs {
                dispatch.filter.append("-A KUBE-EXTERNAL-SERVICES -m comment --comment \"\(externalFilter.comment)\" \(match) -d \(ip) --dport \(port) -j \(externalFilter.target)")
            }
        }
        if let nodePort = plan.nodePort {
            if plan.externalStage != nil {
                dispatch.natNodePorts.append("-A KUBE-NODEPORTS -m comment --comment \"\(svc)\" \(match) --dport \(nodePort) -j \(externalChain)")
            }
            if let externalFilter {
                dispatch.filter.append("-A KUBE-EXTERNAL-SERVICES -m comment --comment \"\(externalFilter.comment)\" -m addrtype --dst-type LOCAL \(match) --dport \(nodePort) -j \(externalFilter.target)")
            }
        }
        if let healthPort = plan.healthCheckNodePort {
            dispatch.filter.append("-A KUBE-NODEPORTS -m comment --comment \"\(svc) health check node port\" -m tcp -p tcp --dport \(healthPort) -j ACCEPT")
        }

        var chains: [String] = []
        var rules: [String] = []

        // The masquerade decision for cluster IP traffic sits at the top of the chain it forwards to.
        var internalChain: String?
        var internalMasquerade: [String] = []
        if case .forward(let pool) = plan.clusterIPTraffic {
            internalChain = chain(pool)
            for ip in plan.clusterIPs {
                let args = "-m comment --comment \"\(svc) cluster IP\" \(match) -d \(ip) --dport \(port)"
                switch plan.clusterIPMasquerade {
                case .all: internalMasquerade.append("-A \(chain(pool)) \(args) -j KUBE-MARK-MASQ")
                case .outside(let cidr): internalMasquerade.append("-A \(chain(pool)) \(args) ! -s \(cidr.masked) -j KUBE-MARK-MASQ")
                case .none: break
                }
            }
        }

        if let stage = plan.externalStage {
            chains.append(externalChain)
            if stage.masqueradeAll {
                rules.append("-A \(externalChain) -m comment --comment \"masquerade traffic for \(svc) external destinations\" -j KUBE-MARK-MASQ")
            }
            if let shortCircuit = stage.shortCircuit {
                if let cidr = shortCircuit.podCIDR {
                    rules.append("-A \(externalChain) -m comment --comment \"pod traffic for \(svc) external destinations\" -s \(cidr.masked) -j \(clusterChain)")
                }
                rules.append("-A \(externalChain) -m comment --comment \"masquerade LOCAL traffic for \(svc) external destinations\" -m addrtype --src-type LOCAL -j KUBE-MARK-MASQ")
                rules.append("-A \(externalChain) -m comment --comment \"route LOCAL traffic for \(svc) external destinations\" -m addrtype --src-type LOCAL -j \(clusterChain)")
            }
            if case .forward(let pool) = plan.externalTraffic {
                rules.append("-A \(externalChain) -j \(chain(pool))")
            }
        }

        if let firewall = plan.firewall {
            chains.append(firewallChain)
            let args = "-A \(firewallChain) -m comment --comment \"\(svc) loadbalancer IP\""
            for cidr in firewall.allowedSources {
                rules.append("\(args) -s \(cidr.isHost ? "\(cidr.address)" : "\(cidr.masked)") -j \(externalChain)")
            }
            rules.append("-A \(firewallChain) -m comment --comment \"other traffic to \(svc) will be dropped by KUBE-PROXY-FIREWALL\"")
        }

        var endpointChains: [(ProxyEndpoint, String)] = []
        var seen = Set<ProxyEndpoint>()
        func chainName(_ endpoint: ProxyEndpoint) -> String {
            if let known = endpointChains.first(where: { $0.0 == endpoint }) { return known.1 }
            let chain = IPTablesChainName.endpoint(name, endpoint)
            endpointChains.append((endpoint, chain))
            return chain
        }
        func policyChain(_ chain: String, _ endpoints: [ProxyEndpoint]) {
            chains.append(chain)
            if chain == internalChain { rules.append(contentsOf: internalMasquerade) }
            if let timeout = plan.affinityTimeout {
                for endpoint in endpoints {
                    rules.append("-A \(chain)\(endpointComment(svc, endpoint, options)) -m recent --name \(chainName(endpoint)) --rcheck --seconds \(timeout) --reap -j \(chainName(endpoint))")
                }
            }
            for (index, endpoint) in endpoints.enumerated() {
                let statistic = index < endpoints.count - 1
                    ? " -m statistic --mode random --probability \(probability(endpoints.count - index))" : ""
                rules.append("-A \(chain)\(endpointComment(svc, endpoint, options))\(statistic) -j \(chainName(endpoint))")
            }
        }
        if let pool = plan.clusterPool { policyChain(clusterChain, pool) }
        if let pool = plan.localPool { policyChain(localChain, pool) }

        for (endpoint, chain) in endpointChains where seen.insert(endpoint).inserted {
            chains.append(chain)
            let comment = options.endpointComments ? " -m comment --comment \"\(svc)\"" : ""
            rules.append("-A \(chain)\(comment) -s \(endpoint.address) -j KUBE-MARK-MASQ")
            let affinity = plan.affinityTimeout != nil ? " -m recent --name \(chain) --set" : ""
            rules.append("-A \(chain)\(comment)\(affinity) \(match) -j DNAT --to-destination \(endpoint)")
        }
        return IPTablesServiceRules(chains: chains, chainRules: rules, dispatch: dispatch)
    }

    /// kube-proxy's `%0.10f` of 1/n: the probability that the i-th of n remaining endpoints is picked.
    public static func probability(_ remaining: Int) -> String {
        let scaled = Int((1.0 / Double(remaining) * 1e10).rounded())
        if scaled >= 10_000_000_000 { return "1.0000000000" }
        let digits = String(scaled)
        return "0." + String(repeating: "0", count: 10 - digits.count) + digits
    }

    private static func endpointComment(_ svc: String, _ endpoint: ProxyEndpoint, _ options: IPTablesRuleOptions) -> String {
        options.endpointComments ? " -m comment --comment \"\(svc) -> \(endpoint)\"" : ""
    }
}

import StraitModel

/// What the rules depend on besides the services: kube-proxy's flags for the iptables mode.
public struct IPTablesRuleOptions: Sendable, Hashable {
    /// The address family these rules are for (`iptables` or `ip6tables`); other addresses are skipped.
    public var family: IPFamily
    /// `--cluster-cidr`: traffic to a ClusterIP from outside these is masqueraded (kube-proxy's
    /// ClusterCIDR local-traffic detector). Empty means no detector.
    public var clusterCIDRs: [IPCIDR]
    /// `--masquerade-all`: masquerade all ClusterIP traffic.
    public var masqueradeAll: Bool
    /// `--nodeport-addresses`: NodePorts answer only on local addresses inside these; empty means all.
    public var nodePortAddresses: [IPCIDR]
    /// The node's own addresses (a source range holding one lets the node reach its load-balancer IPs).
    public var nodeIPs: [IPAddress]
    /// Comments on per-endpoint rules; kube-proxy drops them above 1,000 endpoints to keep restores small.
    public var endpointComments: Bool

    public init(family: IPFamily = .ipv4, clusterCIDRs: [IPCIDR] = [], masqueradeAll: Bool = false,
                nodePortAddresses: [IPCIDR] = [], nodeIPs: [IPAddress] = [], endpointComments: Bool = true) {
        self.family = family
        self.clusterCIDRs = clusterCIDRs
        self.masqueradeAll = masqueradeAll
        self.nodePortAddresses = nodePortAddresses
        self.nodeIPs = nodeIPs
        self.endpointComments = endpointComments
    }

    /// The cluster CIDR the local-traffic detector uses for this family, if any.
    var localCIDR: IPCIDR? { clusterCIDRs.first { $0.family == family } }
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
/// `ServicePortEntry` and the options, testable without root.
public enum IPTablesRules {
    public static let masqueradeMark = "0x4000"

    /// The fixed nat chains and their rules (rewritten on every full sync).
    public static let natBaseChains = [IPTablesChainName.services, IPTablesChainName.nodePorts,
                                       IPTablesChainName.postrouting, IPTablesChainName.markMasquerade]
    /// The fixed filter chains; the whole filter part is small and rewritten whenever it changes.
    public static let filterBaseChains = [IPTablesChainName.services, IPTablesChainName.externalServices,
                                          IPTablesChainName.forward, IPTablesChainName.nodePorts,
                                          IPTablesChainName.proxyFirewall]

    public static let natBaseRules = [
        "-A KUBE-POSTROUTING -m mark ! --mark \(masqueradeMark)/\(masqueradeMark) -j RETURN",
        "-A KUBE-POSTROUTING -j MARK --xor-mark \(masqueradeMark)",
        "-A KUBE-POSTROUTING -m comment --comment \"kubernetes service traffic requiring SNAT\" -j MASQUERADE --random-fully",
        "-A KUBE-MARK-MASQ -j MARK --or-mark \(masqueradeMark)",
    ]

    public static let filterForwardRules = [
        "-A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP",
        "-A KUBE-FORWARD -m comment --comment \"kubernetes forwarding rules\" -m mark --mark \(masqueradeMark)/\(masqueradeMark) -j ACCEPT",
        "-A KUBE-FORWARD -m comment --comment \"kubernetes forwarding conntrack rule\" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
    ]

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
        let ranges = options.nodePortAddresses.filter { $0.family == options.family }
        if ranges.isEmpty {
            return ["-A KUBE-SERVICES \(comment) -m addrtype --dst-type LOCAL \(loopback) -j KUBE-NODEPORTS"]
        }
        return ranges.map { "-A KUBE-SERVICES \(comment) -d \($0.masked) -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS" }
    }

    /// Every rule of one Service port. Equivalent of the per-service body of kube-proxy's
    /// `syncProxyRules` (pkg/proxy/iptables/proxier.go).
    public static func render(_ entry: ServicePortEntry, _ options: IPTablesRuleOptions) -> IPTablesServiceRules {
        let family = options.family
        let name = entry.name
        let svc = name.description
        let proto = IPTablesChainName.protocolName(entry.protocol)
        let match = "-m \(proto) -p \(proto)"
        let port = entry.port
        let ownFamily = { (endpoint: ProxyEndpoint) in endpoint.address.family == family }

        let clusterIPs = entry.clusterIPs.filter { $0.family == family }
        let externalIPs = entry.externalIPs.filter { $0.family == family }
        let loadBalancerIPs = entry.loadBalancerIPs.filter { $0.family == family }
        let sourceRanges = entry.loadBalancerSourceRanges.filter { $0.family == family }
        let internalEndpoints = entry.internalEndpoints.filter(ownFamily)
        let externalEndpoints = entry.externalEndpoints.filter(ownFamily)
        let iTPLocal = entry.internalTrafficPolicyLocal
        let eTPLocal = entry.externalTrafficPolicyLocal
        let externallyAccessible = entry.nodePort != nil || !externalIPs.isEmpty || !loadBalancerIPs.isEmpty

        // Cluster-policy endpoints: what ClusterIP traffic uses under iTP=Cluster, and what eTP=Local's
        // short-circuit for pod- and node-sourced traffic uses. Local-policy endpoints likewise.
        let clusterEndpoints: [ProxyEndpoint] = !iTPLocal ? internalEndpoints
            : !eTPLocal ? externalEndpoints : clusterFallback(entry.allEndpoints.filter(ownFamily))
        let localEndpoints: [ProxyEndpoint] = iTPLocal ? internalEndpoints
            : eTPLocal ? externalEndpoints : []

        let hasEndpoints = entry.hasEndpoints && !(clusterEndpoints.isEmpty && localEndpoints.isEmpty)
        let clusterChain = IPTablesChainName.cluster(name)
        let localChain = IPTablesChainName.local(name)
        let externalChain = IPTablesChainName.external(name)
        let firewallChain = IPTablesChainName.firewall(name)
        let usesClusterChain = !clusterEndpoints.isEmpty && (!iTPLocal || externallyAccessible)
        let usesLocalChain = !localEndpoints.isEmpty && (iTPLocal || (eTPLocal && externallyAccessible))
        let internalChain = iTPLocal ? localChain : clusterChain
        let hasInternalEndpoints = hasEndpoints && !internalEndpoints.isEmpty
        let externalPolicyChain = eTPLocal ? localChain : clusterChain
        let hasExternalEndpoints = hasEndpoints && !externalEndpoints.isEmpty
        let usesExternalChain = hasEndpoints && externallyAccessible
        let usesFirewallChain = hasEndpoints && !loadBalancerIPs.isEmpty && !sourceRanges.isEmpty
        let loadBalancerChain = usesFirewallChain ? firewallChain : externalChain

        let internalFilter: (target: String, comment: String)? = !hasEndpoints ? ("REJECT", "\(svc) has no endpoints")
            : !hasInternalEndpoints ? ("DROP", "\(svc) has no local endpoints") : nil
        let externalFilter: (target: String, comment: String)? = !hasEndpoints ? ("REJECT", "\(svc) has no endpoints")
            : !hasExternalEndpoints ? ("DROP", "\(svc) has no local endpoints") : nil

        var dispatch = IPTablesDispatch()
        for ip in clusterIPs {
            if hasInternalEndpoints {
                dispatch.natServices.append(
                    "-A KUBE-SERVICES -m comment --comment \"\(svc) cluster IP\" \(match) -d \(ip) --dport \(port) -j \(internalChain)")
            } else if let internalFilter {
                dispatch.filter.append("-A KUBE-SERVICES -m comment --comment \"\(internalFilter.comment)\" \(match) -d \(ip) --dport \(port) -j \(internalFilter.target)")
            }
        }
        for ip in externalIPs {
            if hasEndpoints {
                dispatch.natServices.append(
                    "-A KUBE-SERVICES -m comment --comment \"\(svc) external IP\" \(match) -d \(ip) --dport \(port) -j \(externalChain)")
            }
            if let externalFilter {
                dispatch.filter.append("-A KUBE-EXTERNAL-SERVICES -m comment --comment \"\(externalFilter.comment)\" \(match) -d \(ip) --dport \(port) -j \(externalFilter.target)")
            }
        }
        for ip in loadBalancerIPs {
            if hasEndpoints {
                dispatch.natServices.append(
                    "-A KUBE-SERVICES -m comment --comment \"\(svc) loadbalancer IP\" \(match) -d \(ip) --dport \(port) -j \(loadBalancerChain)")
            }
            if usesFirewallChain {
                dispatch.filter.append("-A KUBE-PROXY-FIREWALL -m comment --comment \"\(svc) traffic not accepted by \(firewallChain)\" \(match) -d \(ip) --dport \(port) -j DROP")
            }
        }
        if let externalFilter {
            for ip in loadBalancerIPs {
                dispatch.filter.append("-A KUBE-EXTERNAL-SERVICES -m comment --comment \"\(externalFilter.comment)\" \(match) -d \(ip) --dport \(port) -j \(externalFilter.target)")
            }
        }
        if let nodePort = entry.nodePort {
            if hasEndpoints {
                dispatch.natNodePorts.append("-A KUBE-NODEPORTS -m comment --comment \"\(svc)\" \(match) --dport \(nodePort) -j \(externalChain)")
            }
            if let externalFilter {
                dispatch.filter.append("-A KUBE-EXTERNAL-SERVICES -m comment --comment \"\(externalFilter.comment)\" -m addrtype --dst-type LOCAL \(match) --dport \(nodePort) -j \(externalFilter.target)")
            }
        }
        if let healthPort = entry.healthCheckNodePort {
            dispatch.filter.append("-A KUBE-NODEPORTS -m comment --comment \"\(svc) health check node port\" -m tcp -p tcp --dport \(healthPort) -j ACCEPT")
        }

        var chains: [String] = []
        var rules: [String] = []

        // The masquerade decision for ClusterIP traffic sits at the top of the internal policy chain.
        var internalMasquerade: [String] = []
        if hasInternalEndpoints {
            for ip in clusterIPs {
                let args = "-m comment --comment \"\(svc) cluster IP\" \(match) -d \(ip) --dport \(port)"
                if options.masqueradeAll {
                    internalMasquerade.append("-A \(internalChain) \(args) -j KUBE-MARK-MASQ")
                } else if let cidr = options.localCIDR {
                    internalMasquerade.append("-A \(internalChain) \(args) ! -s \(cidr.masked) -j KUBE-MARK-MASQ")
                }
            }
        }

        if usesExternalChain {
            chains.append(externalChain)
            if !eTPLocal {
                rules.append("-A \(externalChain) -m comment --comment \"masquerade traffic for \(svc) external destinations\" -j KUBE-MARK-MASQ")
            } else if usesClusterChain {
                // Pod- and node-sourced traffic to an external address acts as if it went out to the
                // load balancer and came back: cluster endpoints, and node traffic masqueraded.
                if let cidr = options.localCIDR {
                    rules.append("-A \(externalChain) -m comment --comment \"pod traffic for \(svc) external destinations\" -s \(cidr.masked) -j \(clusterChain)")
                }
                rules.append("-A \(externalChain) -m comment --comment \"masquerade LOCAL traffic for \(svc) external destinations\" -m addrtype --src-type LOCAL -j KUBE-MARK-MASQ")
                rules.append("-A \(externalChain) -m comment --comment \"route LOCAL traffic for \(svc) external destinations\" -m addrtype --src-type LOCAL -j \(clusterChain)")
            }
            if hasExternalEndpoints {
                rules.append("-A \(externalChain) -j \(externalPolicyChain)")
            }
        }

        if usesFirewallChain {
            chains.append(firewallChain)
            let args = "-A \(firewallChain) -m comment --comment \"\(svc) loadbalancer IP\""
            for cidr in sourceRanges {
                rules.append("\(args) -s \(cidr.masked) -j \(externalChain)")
            }
            if options.nodeIPs.contains(where: { ip in sourceRanges.contains { $0.contains(ip) } }) {
                for ip in loadBalancerIPs { rules.append("\(args) -s \(ip) -j \(externalChain)") }
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
            if let timeout = entry.affinityTimeout {
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
        if usesClusterChain { policyChain(clusterChain, clusterEndpoints) }
        if usesLocalChain { policyChain(localChain, localEndpoints) }

        for (endpoint, chain) in endpointChains where seen.insert(endpoint).inserted {
            chains.append(chain)
            let comment = options.endpointComments ? " -m comment --comment \"\(svc)\"" : ""
            rules.append("-A \(chain)\(comment) -s \(endpoint.address) -j KUBE-MARK-MASQ")
            let affinity = entry.affinityTimeout != nil ? " -m recent --name \(chain) --set" : ""
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

    /// Cluster endpoints when the entry only carries policy-filtered lists (both policies Local):
    /// ready ones, else the serving-and-terminating ones, as kube-proxy's `CategorizeEndpoints`.
    private static func clusterFallback(_ all: [ProxyEndpoint]) -> [ProxyEndpoint] {
        let ready = all.filter(\.isReady)
        return ready.isEmpty ? all.filter { $0.isServing && $0.isTerminating } : ready
    }
}

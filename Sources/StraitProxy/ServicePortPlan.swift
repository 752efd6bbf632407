import StraitModel

/// What one Service port does with a packet, for one IP family: every decision kube-proxy's
/// proxiers make per Service (`syncProxyRules` in `pkg/proxy/iptables/proxier.go`, the same in its
/// nftables and IPVS proxiers), made once, here. A mode (iptables, nftables, IPVS) only translates
/// a plan into its kernel's objects; it never chooses endpoints, drop or reject, or masquerade.
///
/// The stages a packet passes, as kube-proxy names them:
/// - to a cluster IP: `clusterIPTraffic` (with `clusterIPMasquerade` first when it forwards);
/// - to the node port, an external IP or a load-balancer IP: the `firewall` (load-balancer IPs
///   only), then the `externalStage`, then `externalTraffic`;
/// - a forwarded packet goes to one endpoint of the pool its fate names (`clusterPool` or
///   `localPool`), chosen at random or by ClientIP affinity; a packet an endpoint sends to its
///   own Service is masqueraded (hairpin), whatever the plan.
public struct ServicePortPlan: Sendable, Hashable {
    public var name: ServicePortName
    public var family: IPFamily
    public var port: UInt16
    /// This family's addresses of the port.
    public var clusterIPs: [IPAddress]
    public var nodePort: UInt16?
    public var externalIPs: [IPAddress]
    public var loadBalancerIPs: [IPAddress]
    /// ClientIP affinity timeout in seconds; nil without affinity.
    public var affinityTimeout: Int?
    /// The node port a load balancer polls for this node's local endpoints (`externalTrafficPolicy:
    /// Local`); the node accepts it.
    public var healthCheckNodePort: UInt16?

    /// The endpoints cluster-wide traffic is spread over; nil when no traffic of this port uses them
    /// (a mode then makes nothing for this pool).
    public var clusterPool: [ProxyEndpoint]?
    /// This node's endpoints, for a Local traffic policy; nil when no traffic uses them.
    public var localPool: [ProxyEndpoint]?

    /// What traffic to a cluster IP gets.
    public var clusterIPTraffic: TrafficFate
    /// Which sources traffic to a cluster IP is masqueraded for (decided only where it forwards).
    public var clusterIPMasquerade: SourceMasquerade
    /// What traffic to the node port, external IPs and load-balancer IPs gets; nil when the port
    /// has none of them.
    public var externalTraffic: TrafficFate?
    /// The stage external traffic passes before its pool (kube-proxy's `KUBE-EXT-` chain); nil when
    /// the port is not reachable from outside or has no endpoints at all.
    public var externalStage: ExternalStage?
    /// `loadBalancerSourceRanges`: only these sources reach the load-balancer IPs; nil when any may.
    public var firewall: LoadBalancerFirewall?

    public init(name: ServicePortName, family: IPFamily, port: UInt16, clusterIPs: [IPAddress], nodePort: UInt16? = nil,
                externalIPs: [IPAddress] = [], loadBalancerIPs: [IPAddress] = [], affinityTimeout: Int? = nil,
                healthCheckNodePort: UInt16? = nil, clusterPool: [ProxyEndpoint]? = nil,
                localPool: [ProxyEndpoint]? = nil, clusterIPTraffic: TrafficFate,
                clusterIPMasquerade: SourceMasquerade = .none, externalTraffic: TrafficFate? = nil,
                externalStage: ExternalStage? = nil, firewall: LoadBalancerFirewall? = nil) {
        self.name = name
        self.family = family
        self.port = port
        self.clusterIPs = clusterIPs
        self.nodePort = nodePort
        self.externalIPs = externalIPs
        self.loadBalancerIPs = loadBalancerIPs
        self.affinityTimeout = affinityTimeout
        self.healthCheckNodePort = healthCheckNodePort
        self.clusterPool = clusterPool
        self.localPool = localPool
        self.clusterIPTraffic = clusterIPTraffic
        self.clusterIPMasquerade = clusterIPMasquerade
        self.externalTraffic = externalTraffic
        self.externalStage = externalStage
        self.firewall = firewall
    }

    public var `protocol`: TransportProtocol { name.protocol }

    /// The endpoints of `pool`, or none when the plan has no such pool.
    public func endpoints(of pool: EndpointPool) -> [ProxyEndpoint] {
        (pool == .cluster ? clusterPool : localPool) ?? []
    }

    /// Every endpoint some traffic of this port may reach (each once, in order).
    public var reachableEndpoints: [ProxyEndpoint] {
        Array(Set((clusterPool ?? []) + (localPool ?? []))).sorted()
    }

    /// Whether the port has endpoints anywhere (else every packet to it is rejected).
    public var hasEndpoints: Bool { clusterIPTraffic != .reject }
}

/// The pool a forwarded packet's endpoint is chosen from.
public enum EndpointPool: Sendable, Hashable {
    /// Every usable endpoint in the cluster (narrowed by topology hints).
    case cluster
    /// This node's endpoints only (a Local traffic policy).
    case local
}

/// What a packet to one of a Service port's addresses gets.
public enum TrafficFate: Sendable, Hashable {
    /// DNAT to one endpoint of the pool.
    case forward(EndpointPool)
    /// Dropped: the Service has endpoints, but none this traffic may use (a Local policy and none
    /// on this node). kube-proxy counts these in `sync_proxy_rules_no_local_endpoints_total`.
    case drop
    /// Rejected (ICMP unreachable / TCP reset): the Service has no endpoints at all.
    case reject
}

/// Which sources of traffic to a cluster IP are masqueraded.
public enum SourceMasquerade: Sendable, Hashable {
    /// None (no `--cluster-cidr` for the family and no `--masquerade-all`).
    case none
    /// Every source (`--masquerade-all`).
    case all
    /// Sources outside the pod network (kube-proxy's ClusterCIDR local-traffic detector).
    case outside(IPCIDR)
}

/// kube-proxy's `KUBE-EXT-` stage, in front of the external pool.
public struct ExternalStage: Sendable, Hashable {
    /// `externalTrafficPolicy: Cluster`: every packet is marked for masquerade (it may cross nodes).
    public var masqueradeAll: Bool
    /// `externalTrafficPolicy: Local`: traffic from pods (`podCIDR`, when known) and from the node
    /// itself (masqueraded) goes to the cluster pool, as if it had gone out to the load balancer
    /// and come back; nil when there is no cluster pool to short-circuit to.
    public var shortCircuit: ShortCircuit?

    public init(masqueradeAll: Bool, shortCircuit: ShortCircuit? = nil) {
        self.masqueradeAll = masqueradeAll
        self.shortCircuit = shortCircuit
    }

    public struct ShortCircuit: Sendable, Hashable {
        /// The family's `--cluster-cidr`; nil without one (only the node's own traffic short-circuits).
        public var podCIDR: IPCIDR?

        public init(podCIDR: IPCIDR?) { self.podCIDR = podCIDR }
    }
}

/// `loadBalancerSourceRanges` of a port with load-balancer IPs.
public struct LoadBalancerFirewall: Sendable, Hashable {
    /// Sources allowed through; every other packet to a load-balancer IP is dropped. Holds the
    /// load-balancer IPs themselves too when a range contains one of the node's IPs (the node then
    /// reaches its load balancer with the load-balancer IP as source).
    public var allowedSources: [IPCIDR]

    public init(allowedSources: [IPCIDR]) { self.allowedSources = allowedSources }
}

/// The settings of the proxy, not of a mode, that decisions depend on: built once from
/// `ProxyConfiguration` and shared by the plan and every mode.
public struct ProxyOptions: Sendable, Hashable {
    /// `--cluster-cidr`: traffic to a cluster IP from outside these is masqueraded; also where
    /// pod traffic comes from (the external short-circuit). Empty means no detector.
    public var clusterCIDRs: [IPCIDR]
    /// `--masquerade-all`.
    public var masqueradeAll: Bool
    /// `--nodeport-addresses`: node ports answer only on local addresses inside these; empty means all.
    public var nodePortAddresses: [IPCIDR]
    /// The node's own addresses (a firewall range holding one lets the node reach its load balancer).
    public var nodeIPs: [IPAddress]

    public init(clusterCIDRs: [IPCIDR] = [], masqueradeAll: Bool = false, nodePortAddresses: [IPCIDR] = [],
                nodeIPs: [IPAddress] = []) {
        self.clusterCIDRs = clusterCIDRs
        self.masqueradeAll = masqueradeAll
        self.nodePortAddresses = nodePortAddresses
        self.nodeIPs = nodeIPs
    }

    /// The family's cluster CIDR (the first one given), if any.
    public func clusterCIDR(_ family: IPFamily) -> IPCIDR? { clusterCIDRs.first { $0.family == family } }

    /// The family's `--nodeport-addresses` ranges.
    public func nodePortRanges(_ family: IPFamily) -> [IPCIDR] { nodePortAddresses.filter { $0.family == family } }
}

extension ServicePortPlan {
    /// The facts of one Service port in one family, as the builder gathers them from the Service
    /// and its EndpointSlices, before any decision.
    struct Facts {
        var name: ServicePortName
        var family: IPFamily
        var port: UInt16
        var clusterIPs: [IPAddress]
        var nodePort: UInt16?
        var externalIPs: [IPAddress]
        var loadBalancerIPs: [IPAddress]
        var sourceRanges: [IPCIDR]
        var affinityTimeout: Int?
        var healthCheckNodePort: UInt16?
        var internalPolicyLocal: Bool
        var externalPolicyLocal: Bool
        /// Every endpoint of the family the slices list for the port.
        var endpoints: [ProxyEndpoint]

        var externallyAccessible: Bool { nodePort != nil || !externalIPs.isEmpty || !loadBalancerIPs.isEmpty }
    }

    /// Decides the port's plan, as kube-proxy's proxiers do:
    /// - pools from `EndpointSelection` (kube-proxy's `CategorizeEndpoints`), each kept only where
    ///   some traffic uses it;
    /// - no endpoint that could serve, anywhere: reject everything; a Local policy with no local
    ///   endpoint: drop that traffic (the other kind may still forward);
    /// - the external stage exists when the port is reachable from outside and has endpoints; the
    ///   firewall when it also has load-balancer IPs and source ranges.
    init(deciding facts: Facts, nodeName: String, zone: String?, options: ProxyOptions) {
        // kube-proxy's ExternalPolicyLocal() holds only for externally accessible ports.
        let externalLocal = facts.externalPolicyLocal && facts.externallyAccessible
        let selection = EndpointSelection(
            endpoints: facts.endpoints, internalPolicyLocal: facts.internalPolicyLocal,
            externalPolicyLocal: externalLocal, externallyAccessible: facts.externallyAccessible,
            nodeName: nodeName, zone: zone)
        let usesCluster = !facts.internalPolicyLocal || facts.externallyAccessible
        let usesLocal = facts.internalPolicyLocal || externalLocal
        let clusterPool = usesCluster && !selection.cluster.isEmpty ? selection.cluster : nil
        let localPool = usesLocal && !selection.local.isEmpty ? selection.local : nil
        // kube-proxy's hasAnyEndpoints: some endpoint anywhere could serve (ready, or serving and
        // terminating), whether or not this traffic's policy may use it.
        let hasEndpoints = facts.endpoints.contains { $0.isReady || ($0.isServing && $0.isTerminating) }

        func fate(policyLocal: Bool) -> TrafficFate {
            if !hasEndpoints { return .reject }
            if policyLocal { return localPool == nil ? .drop : .forward(.local) }
            return clusterPool == nil ? .drop : .forward(.cluster)
        }
        let clusterIPTraffic = fate(policyLocal: facts.internalPolicyLocal)
        let podCIDR = options.clusterCIDR(facts.family)

        var externalStage: ExternalStage?
        if hasEndpoints && facts.externallyAccessible {
            externalStage = externalLocal
                ? ExternalStage(masqueradeAll: false,
                                shortCircuit: clusterPool == nil ? nil : ExternalStage.ShortCircuit(podCIDR: podCIDR))
                : ExternalStage(masqueradeAll: true)
        }

        var firewall: LoadBalancerFirewall?
        if hasEndpoints && !facts.loadBalancerIPs.isEmpty && !facts.sourceRanges.isEmpty {
            var allowed = facts.sourceRanges
            if options.nodeIPs.contains(where: { ip in facts.sourceRanges.contains { $0.contains(ip) } }) {
                allowed += facts.loadBalancerIPs.map { IPCIDR(host: $0) }
            }
            firewall = LoadBalancerFirewall(allowedSources: allowed)
        }

        self.init(
            name: facts.name, family: facts.family, port: facts.port, clusterIPs: facts.clusterIPs,
            nodePort: facts.nodePort, externalIPs: facts.externalIPs, loadBalancerIPs: facts.loadBalancerIPs,
            affinityTimeout: facts.affinityTimeout, healthCheckNodePort: facts.healthCheckNodePort,
            clusterPool: clusterPool, localPool: localPool, clusterIPTraffic: clusterIPTraffic,
            clusterIPMasquerade: options.masqueradeAll ? .all : podCIDR.map { .outside($0) } ?? .none,
            externalTraffic: facts.externallyAccessible ? fate(policyLocal: externalLocal) : nil,
            externalStage: externalStage, firewall: firewall)
    }
}

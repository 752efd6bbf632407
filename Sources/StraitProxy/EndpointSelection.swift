import StraitModel

/// The endpoints one Service port uses, chosen as kube-proxy's `CategorizeEndpoints`
/// (`pkg/proxy/topology.go`) chooses them, for one IP family:
/// - cluster endpoints: ready ones (narrowed by topology hints when they apply); if none, the
///   serving-and-terminating ones (topology ignored);
/// - local endpoints: the local ready ones; if none, the local serving-and-terminating ones.
/// Cluster endpoints are computed only when the port uses them (internal policy Cluster, or the
/// port is reachable from outside); local ones only under a Local policy that applies.
struct EndpointSelection: Sendable, Hashable {
    var cluster: [ProxyEndpoint] = []
    var local: [ProxyEndpoint] = []

    /// The label a node's zone comes from.
    static let zoneLabel = "topology.kubernetes.io/zone"

    init(endpoints: [ProxyEndpoint], internalPolicyLocal: Bool, externalPolicyLocal: Bool,
         externallyAccessible: Bool, nodeName: String, zone: String?) {
        let usesCluster = !internalPolicyLocal || externallyAccessible
        let usesLocal = internalPolicyLocal || (externalPolicyLocal && externallyAccessible)

        if usesCluster {
            let mode = Self.topologyMode(endpoints, nodeName: nodeName, zone: zone)
            cluster = endpoints.filter { $0.isReady && Self.available($0, mode: mode, nodeName: nodeName, zone: zone) }
            if cluster.isEmpty {
                cluster = endpoints.filter { $0.isServing && $0.isTerminating }
            }
        }
        guard usesLocal else { return }

        var localReady = false
        var localTerminating = false
        for endpoint in endpoints {
            if endpoint.isReady {
                localReady = localReady || endpoint.isLocal
            } else if endpoint.isServing && endpoint.isTerminating {
                localTerminating = localTerminating || endpoint.isLocal
            }
        }
        if localReady {
            local = endpoints.filter { $0.isLocal && $0.isReady }
        } else if localTerminating {
            local = endpoints.filter { $0.isLocal && $0.isServing && $0.isTerminating }
        }
    }

    enum TopologyMode { case none, node, zone }

    /// Hints apply only when every ready endpoint carries one of the kind and at least one names
    /// this node (same-node hints win) or this node's zone.
    static func topologyMode(_ endpoints: [ProxyEndpoint], nodeName: String, zone: String?) -> TopologyMode {
        var allHaveNodeHints = true
        var hasForNode = false
        var allHaveZoneHints = true
        var hasForZone = false
        for endpoint in endpoints where endpoint.isReady {
            if let hints = endpoint.nodeHints, !hints.isEmpty {
                if hints.contains(nodeName) { hasForNode = true }
            } else {
                allHaveNodeHints = false
            }
            if let hints = endpoint.zoneHints, !hints.isEmpty {
                if let zone, hints.contains(zone) { hasForZone = true }
            } else {
                allHaveZoneHints = false
            }
        }
        if allHaveNodeHints && hasForNode { return .node }
        if allHaveZoneHints && hasForZone { return .zone }
        return .none
    }

    static func available(_ endpoint: ProxyEndpoint, mode: TopologyMode, nodeName: String, zone: String?) -> Bool {
        switch mode {
        case .none: true
        case .node: endpoint.nodeHints?.contains(nodeName) ?? false
        case .zone: zone.map { endpoint.zoneHints?.contains($0) ?? false } ?? false
        }
    }
}

import HashTreeCollections
import StraitModel

/// Names one port of one Service, as kube-proxy's `ServicePortName` does: the unit every backend
/// programs. Ordered so snapshots and rule files come out the same every time.
public struct ServicePortName: Sendable, Hashable, Comparable, CustomStringConvertible {
    public var namespace: String
    public var name: String
    /// The Service port's name ("" for an unnamed single port).
    public var port: String
    public var `protocol`: TransportProtocol

    public init(namespace: String, name: String, port: String, protocol: TransportProtocol) {
        self.namespace = namespace
        self.name = name
        self.port = port
        self.protocol = `protocol`
    }

    /// `namespace/name:port` (the port part only when named), as kube-proxy prints it.
    public var description: String { port.isEmpty ? "\(namespace)/\(name)" : "\(namespace)/\(name):\(port)" }

    public static func < (a: ServicePortName, b: ServicePortName) -> Bool {
        (a.namespace, a.name, a.port, a.protocol.rawValue) < (b.namespace, b.name, b.port, b.protocol.rawValue)
    }
}

/// One backend address of a Service port, as the EndpointSlices describe it.
public struct ProxyEndpoint: Sendable, Hashable, Comparable, CustomStringConvertible {
    public var address: IPAddress
    public var port: UInt16
    /// On this node (the slice's `nodeName` is the proxy's hostname).
    public var isLocal: Bool
    public var isReady: Bool
    public var isServing: Bool
    public var isTerminating: Bool
    public var nodeName: String?
    public var zone: String?
    /// Topology hints: zones and nodes this endpoint should serve (nil when the slice gives none).
    public var zoneHints: Set<String>?
    public var nodeHints: Set<String>?

    /// Whether this endpoint can run on this node: it is local, or its slice names no node. Only such an
    /// endpoint can send a packet that this node's rules DNAT back to itself (hairpin); a pod on another
    /// node reaches its Service through its own node's rules.
    public var mayBeOnThisNode: Bool { isLocal || nodeName == nil }

    public init(address: IPAddress, port: UInt16, isLocal: Bool = false, isReady: Bool = true, isServing: Bool = true,
                isTerminating: Bool = false, nodeName: String? = nil, zone: String? = nil,
                zoneHints: Set<String>? = nil, nodeHints: Set<String>? = nil) {
        self.address = address
        self.port = port
        self.isLocal = isLocal
        self.isReady = isReady
        self.isServing = isServing
        self.isTerminating = isTerminating
        self.nodeName = nodeName
        self.zone = zone
        self.zoneHints = zoneHints
        self.nodeHints = nodeHints
    }

    /// `10.244.1.5:8080`, `[fd00::5]:8080`.
    public var description: String {
        address.family == .ipv6 ? "[\(address)]:\(port)" : "\(address):\(port)"
    }

    public static func < (a: ProxyEndpoint, b: ProxyEndpoint) -> Bool { (a.address, a.port) < (b.address, b.port) }
}

/// One Service port as the table holds it: what the Service and its EndpointSlices say (both
/// families together), and the plan for each of its families, which is all a mode programs.
public struct ServicePortEntry: Sendable, Hashable {
    public var name: ServicePortName
    public var port: UInt16
    public var clusterIPs: [IPAddress]
    public var nodePort: UInt16?
    public var externalIPs: [IPAddress]
    public var loadBalancerIPs: [IPAddress]
    /// Empty means every source may reach the load-balancer IPs.
    public var loadBalancerSourceRanges: [IPCIDR]
    /// ClientIP affinity timeout in seconds; nil when affinity is None.
    public var affinityTimeout: Int?
    public var externalTrafficPolicyLocal: Bool
    public var internalTrafficPolicyLocal: Bool
    public var healthCheckNodePort: UInt16?
    /// Every endpoint the slices list for this port (for conntrack cleanup and health checks).
    public var allEndpoints: [ProxyEndpoint]
    /// One plan per family the Service has a cluster IP of, IPv4 first (`decidePlans`).
    public var plans: [ServicePortPlan]

    public init(name: ServicePortName, port: UInt16, clusterIPs: [IPAddress], nodePort: UInt16? = nil,
                externalIPs: [IPAddress] = [], loadBalancerIPs: [IPAddress] = [], loadBalancerSourceRanges: [IPCIDR] = [],
                affinityTimeout: Int? = nil, externalTrafficPolicyLocal: Bool = false,
                internalTrafficPolicyLocal: Bool = false, healthCheckNodePort: UInt16? = nil,
                allEndpoints: [ProxyEndpoint] = [], plans: [ServicePortPlan] = []) {
        self.name = name
        self.port = port
        self.clusterIPs = clusterIPs
        self.nodePort = nodePort
        self.externalIPs = externalIPs
        self.loadBalancerIPs = loadBalancerIPs
        self.loadBalancerSourceRanges = loadBalancerSourceRanges
        self.affinityTimeout = affinityTimeout
        self.externalTrafficPolicyLocal = externalTrafficPolicyLocal
        self.internalTrafficPolicyLocal = internalTrafficPolicyLocal
        self.healthCheckNodePort = healthCheckNodePort
        self.allEndpoints = allEndpoints
        self.plans = plans
    }

    public var `protocol`: TransportProtocol { name.protocol }

    /// Decides the plan of each family the port has a cluster IP of, from the facts above
    /// (`ServicePortPlan.init(deciding:…)`; IPv4 first).
    public mutating func decidePlans(nodeName: String, zone: String? = nil, options: ProxyOptions) {
        let families = Set(clusterIPs.map(\.family))
        plans = IPFamily.allCases.filter(families.contains).map { family in
            ServicePortPlan(deciding: .init(
                name: name, family: family, port: port, clusterIPs: clusterIPs.filter { $0.family == family },
                nodePort: nodePort, externalIPs: externalIPs.filter { $0.family == family },
                loadBalancerIPs: loadBalancerIPs.filter { $0.family == family },
                sourceRanges: loadBalancerSourceRanges.filter { $0.family == family },
                affinityTimeout: affinityTimeout, healthCheckNodePort: healthCheckNodePort,
                internalPolicyLocal: internalTrafficPolicyLocal, externalPolicyLocal: externalTrafficPolicyLocal,
                endpoints: allEndpoints.filter { $0.address.family == family }),
                nodeName: nodeName, zone: zone, options: options)
        }
    }

    /// The entry with its plans decided (see `decidePlans`).
    public func decided(nodeName: String = "", zone: String? = nil, options: ProxyOptions) -> ServicePortEntry {
        var entry = self
        entry.decidePlans(nodeName: nodeName, zone: zone, options: options)
        return entry
    }

    /// The plan for one family; nil when the Service has no cluster IP of it (that family's mode
    /// ignores the Service, as kube-proxy's per-family proxiers do).
    public func plan(for family: IPFamily) -> ServicePortPlan? { plans.first { $0.family == family } }

    /// Whether the port is reachable from outside the node at all.
    public var hasExternalAddresses: Bool { nodePort != nil || !externalIPs.isEmpty || !loadBalancerIPs.isEmpty }

    /// Whether some family of the port has endpoints (else all its traffic is rejected).
    public var hasEndpoints: Bool { plans.contains(where: \.hasEndpoints) }

    /// Every endpoint some traffic of the port may reach, in any family.
    public var reachableEndpoints: [ProxyEndpoint] { plans.flatMap(\.reachableEndpoints) }

    /// This node's ready endpoints: what the health-check node port reports (kube-proxy counts
    /// local ready endpoints).
    public var localReadyEndpointCount: Int { allEndpoints.filter { $0.isLocal && $0.isReady }.count }
}

/// The immutable snapshot one sync programs: every Service port, by name. Backends diff two of
/// them (`changedPorts`) to rewrite only what changed.
///
/// A table made from another by `recordChanges(since:)` remembers which names may differ from it,
/// so `changedPorts` compares only those instead of every entry (43 ms at 10,000 ports, on every
/// change). Equality and hashing look at `ports` alone.
///
/// `ports` is a persistent hash tree: a snapshot and its successor share every node but the paths to
/// the entries that changed, so building the next snapshot while a sync still holds the last one copies
/// a few nodes, not every entry (a `Dictionary` there was copied whole at each change: 44,000 entries
/// retained and released per event).
public struct ServiceTable: Sendable, Hashable {
    public var ports: TreeDictionary<ServicePortName, ServicePortEntry> {
        // No `oldValue` here, so mutating `ports` stays in place; any direct edit forgets the lineage.
        didSet { lineage = nil }
    }

    /// Marks one version of a table: a table and its unmodified copies share it.
    private final class Version: Sendable {}

    private struct Lineage: Sendable {
        var version: Version
        var parent: Version?
        /// Every name whose entry may differ from the parent's.
        var changed: Set<ServicePortName>
    }

    private var lineage: Lineage?

    public init(_ entries: [ServicePortEntry] = []) {
        ports = TreeDictionary(entries.map { ($0.name, $0) }, uniquingKeysWith: { _, last in last })
    }

    public static let empty = ServiceTable()

    public static func == (a: ServiceTable, b: ServiceTable) -> Bool { a.ports == b.ports }

    public func hash(into hasher: inout Hasher) { hasher.combine(ports) }

    /// Records that this table differs from `parent` at most in `changed` (the names `ports` was
    /// edited at since it was a copy of `parent`); `changedPorts(since: parent)` then looks at those only.
    mutating func recordChanges(_ changed: Set<ServicePortName>, since parent: ServiceTable) {
        lineage = Lineage(version: Version(), parent: parent.lineage?.version, changed: changed)
    }

    /// The entries in a stable order.
    public var sortedEntries: [ServicePortEntry] { ports.keys.sorted().map { ports[$0]! } }

    /// The ports added, changed or removed between `old` and `self`.
    public func changedPorts(since old: ServiceTable) -> (upserted: [ServicePortEntry], removed: [ServicePortName]) {
        if let lineage, let parent = lineage.parent, parent === old.lineage?.version {
            let upserted = lineage.changed.compactMap { name in ports[name].flatMap { old.ports[name] != $0 ? $0 : nil } }
            let removed = lineage.changed.filter { ports[$0] == nil && old.ports[$0] != nil }
            return (upserted.sorted { $0.name < $1.name }, removed.sorted())
        }
        let upserted = ports.values.filter { old.ports[$0.name] != $0 }.sorted { $0.name < $1.name }
        let removed = old.ports.keys.filter { ports[$0] == nil }.sorted()
        return (upserted, removed)
    }
}

extension ServicePortEntry {
    /// Every address the port answers on from inside the node: cluster IPs, externalIPs and
    /// load-balancer IPs (NodePorts are matched by port on the node's addresses).
    public var serviceIPs: [IPAddress] { clusterIPs + externalIPs + loadBalancerIPs }
}

import StraitModel

/// An object the snapshot left out, and why (logged by the sync loop when the set changes).
public struct SkippedObject: Sendable, Hashable, Comparable, CustomStringConvertible {
    /// `Service default/web`, `EndpointSlice default/web-abc`.
    public var object: String
    public var reason: String

    public init(object: String, reason: String) {
        self.object = object
        self.reason = reason
    }

    public var description: String { "\(object): \(reason)" }

    public static func < (a: SkippedObject, b: SkippedObject) -> Bool { (a.object, a.reason) < (b.object, b.reason) }
}

/// Builds the `ServiceTable` one sync programs from the current Services and EndpointSlices,
/// following kube-proxy's service and endpoint-slice change trackers:
/// - objects labelled `service.kubernetes.io/service-proxy-name` or `service.kubernetes.io/headless`
///   are ignored (kube-proxy's informers never see them); so are ExternalName and headless Services;
/// - slices are grouped by `kubernetes.io/service-name`, taken in name order, merged and de-duplicated
///   by ip:port (a local copy wins); only `addresses[0]` counts;
/// - a slice port feeds the Service port with the same name and protocol;
/// - a slice of a family the Service has no cluster IP of is ignored, as kube-proxy's per-family
///   proxiers ignore it; externalIPs, load-balancer IPs and source ranges are kept only for the
///   Service's families too;
/// - each family gets its own plan (`ServicePortPlan`), where every decision is made.
/// Objects that fail `validationErrors()` (or slices whose Service is missing) are skipped with a
/// reason; the rest of the table is unaffected.
public struct ServiceTableBuilder: Sendable, Hashable {
    /// This node's name (`--hostname-override` or the host name): endpoints with this `nodeName`
    /// are local, and same-node hints name it.
    public var nodeName: String
    /// This node's `topology.kubernetes.io/zone` label, for same-zone hints.
    public var zone: String?
    /// The proxy's settings the plans depend on (masquerade, pod CIDRs, node IPs).
    public var options: ProxyOptions

    public static let serviceProxyNameLabel = "service.kubernetes.io/service-proxy-name"
    public static let headlessLabel = "service.kubernetes.io/headless"

    public init(nodeName: String, zone: String? = nil, options: ProxyOptions = ProxyOptions()) {
        self.nodeName = nodeName
        self.zone = zone
        self.options = options
    }

    /// Whether kube-proxy's label selector
    /// `!service.kubernetes.io/service-proxy-name,!service.kubernetes.io/headless` excludes the object.
    public static func isIgnoredByLabels(_ metadata: ObjectMeta) -> Bool {
        metadata.labels[serviceProxyNameLabel] != nil || metadata.labels[headlessLabel] != nil
    }

    public struct Result: Sendable, Hashable {
        public var table: ServiceTable
        public var skipped: [SkippedObject]
    }

    public func build(services: [Service], slices: [EndpointSlice]) -> Result {
        var skipped: [SkippedObject] = []
        func skip(_ reference: String, _ reason: String) { skipped.append(SkippedObject(object: reference, reason: reason)) }

        // Slices by Service, in name order so de-duplication is deterministic.
        var slicesByService: [NamespacedName: [EndpointSlice]] = [:]
        for slice in slices.sorted(by: { $0.metadata.name < $1.metadata.name }) {
            if Self.isIgnoredByLabels(slice.metadata) { continue }
            guard let serviceName = slice.serviceName else {
                skip(slice.reference, "has no \(String(reflecting: EndpointSlice.serviceNameLabel)) label")
                continue
            }
            if let error = slice.validationErrors().first {
                skip(slice.reference, "\(error.field): \(error.problem)")
                continue
            }
            guard slice.addressType == .ipv4 || slice.addressType == .ipv6 else { continue }
            slicesByService[NamespacedName(slice.metadata.namespace ?? "default", serviceName), default: []].append(slice)
        }

        var entries: [ServicePortEntry] = []
        var seenServices: Set<NamespacedName> = []
        for service in services {
            let key = NamespacedName(service.metadata.namespace ?? "default", service.metadata.name)
            seenServices.insert(key)
            if Self.isIgnoredByLabels(service.metadata) { continue }
            // kube-proxy's ShouldSkipService: ExternalName, and clusterIP None or unset.
            if service.type == .externalName || service.isHeadless || (service.spec.clusterIP ?? "").isEmpty {
                continue
            }
            if let error = service.validationErrors().first {
                skip(service.reference, "\(error.field): \(error.problem)")
                continue
            }
            entries += portEntries(service, slices: slicesByService[key] ?? [])
        }
        for (key, slices) in slicesByService where !seenServices.contains(key) {
            for slice in slices {
                skip(slice.reference, "its Service \(key) does not exist")
            }
        }
        return Result(table: ServiceTable(entries), skipped: skipped.sorted())
    }

    private func portEntries(_ service: Service, slices: [EndpointSlice]) -> [ServicePortEntry] {
        let clusterIPs = service.clusterIPAddresses
        let families = Set(clusterIPs.map(\.family))
        let externalIPs = service.externalIPAddresses.filter { families.contains($0.family) }
        let loadBalancerIPs = (service.status?.loadBalancer?.ingress ?? [])
            .filter { $0.ipMode == nil || $0.ipMode == "VIP" }
            .compactMap { $0.ip.flatMap { IPAddress($0) } }
            .filter { families.contains($0.family) }
        let sourceRanges = service.loadBalancerSourceCIDRs.filter { families.contains($0.family) }
        let internalLocal = service.internalTrafficPolicy == .local
        let needsHealthCheck = service.type == .loadBalancer && service.externalTrafficPolicy == .local
        let healthCheckNodePort = needsHealthCheck ? service.spec.healthCheckNodePort.flatMap(Self.port) : nil

        return service.ports.map { port in
            let name = ServicePortName(namespace: service.metadata.namespace ?? "default", name: service.metadata.name,
                                       port: port.name ?? "", protocol: port.transportProtocol)
            let nodePort = port.nodePort.flatMap(Self.port)
            let externallyAccessible = nodePort != nil || !externalIPs.isEmpty || !loadBalancerIPs.isEmpty
            let externalLocal = externallyAccessible && service.externalTrafficPolicy == .local
            var entry = ServicePortEntry(
                name: name, port: UInt16(port.port), clusterIPs: clusterIPs, nodePort: nodePort,
                externalIPs: externalIPs, loadBalancerIPs: loadBalancerIPs, loadBalancerSourceRanges: sourceRanges,
                affinityTimeout: service.sessionAffinityTimeout, externalTrafficPolicyLocal: externalLocal,
                internalTrafficPolicyLocal: internalLocal, healthCheckNodePort: healthCheckNodePort,
                allEndpoints: endpoints(for: name, slices: slices, families: families))
            entry.decidePlans(nodeName: nodeName, zone: zone, options: options)
            return entry
        }
    }

    /// Every endpoint the slices give `name`, merged by ip:port, sorted.
    private func endpoints(for name: ServicePortName, slices: [EndpointSlice],
                           families: Set<IPFamily>) -> [ProxyEndpoint] {
        var byKey: [ProxyEndpoint.Key: ProxyEndpoint] = [:]
        for slice in slices {
            let family: IPFamily = slice.addressType == .ipv6 ? .ipv6 : .ipv4
            guard families.contains(family) else { continue }
            for port in slice.ports ?? [] {
                guard (port.name ?? "") == name.port, port.transportProtocol == name.protocol,
                      let number = port.port.flatMap(Self.port) else { continue }
                for endpoint in slice.endpoints ?? [] {
                    guard let text = endpoint.addresses.first, let address = IPAddress(text),
                          address.family == family else { continue }
                    let isLocal = endpoint.nodeName == nodeName
                    let value = ProxyEndpoint(
                        address: address, port: number, isLocal: isLocal, isReady: endpoint.isReady,
                        isServing: endpoint.isServing, isTerminating: endpoint.isTerminating,
                        nodeName: endpoint.nodeName, zone: endpoint.zone,
                        zoneHints: endpoint.hints?.forZones.map { Set($0.map(\.name)) },
                        nodeHints: endpoint.hints?.forNodes.map { Set($0.map(\.name)) })
                    let key = ProxyEndpoint.Key(address: address, port: number)
                    if byKey[key] == nil || isLocal { byKey[key] = value }
                }
            }
        }
        return byKey.values.sorted()
    }

    private static func port(_ value: Int) -> UInt16? { (1...65535).contains(value) ? UInt16(value) : nil }
}

/// `namespace/name` of a Service.
struct NamespacedName: Hashable, Sendable, CustomStringConvertible {
    var namespace: String
    var name: String

    init(_ namespace: String, _ name: String) {
        self.namespace = namespace
        self.name = name
    }

    var description: String { "\(namespace)/\(name)" }
}

extension ProxyEndpoint {
    /// ip:port, the identity kube-proxy de-duplicates endpoints by.
    struct Key: Hashable {
        var address: IPAddress
        var port: UInt16
    }
}

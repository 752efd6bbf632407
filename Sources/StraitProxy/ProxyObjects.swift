import Foundation
import StraitModel

/// The proxy's view of the current objects, fed by source events: kube-proxy's service and
/// endpoint-slice change trackers reduced to what a whole-table rebuild needs. It counts the
/// changes since the last sync (the `_pending` metrics) and remembers the slices'
/// `endpoints.kubernetes.io/last-change-trigger-time` for the network-programming latency.
struct ProxyObjects: Sendable {
    static let triggerTimeAnnotation = "endpoints.kubernetes.io/last-change-trigger-time"

    private(set) var services: [ProxyObjectID: Service] = [:]
    private(set) var slices: [ProxyObjectID: EndpointSlice] = [:]
    private(set) var nodes: [String: Node] = [:]
    /// Whether a full list has been received.
    private(set) var hasSynced = false

    /// Changes since the last `takePending()`.
    private(set) var pendingServiceChanges = 0
    private(set) var pendingEndpointChanges = 0
    private(set) var pendingNodeChanges = 0
    private var pendingTriggerTimes: [Date] = []

    /// Applies one event; returns whether anything the proxy uses changed.
    @discardableResult
    mutating func apply(_ event: ProxySourceEvent) -> Bool {
        switch event {
        case .replaceAll(let objects):
            var services: [ProxyObjectID: Service] = [:]
            var slices: [ProxyObjectID: EndpointSlice] = [:]
            var nodes: [String: Node] = [:]
            for object in objects {
                switch object {
                case .service(let service): services[ProxyObjectID(object)] = service
                case .endpointSlice(let slice): slices[ProxyObjectID(object)] = slice
                case .node(let node): nodes[node.metadata.name] = node
                }
            }
            let serviceChanges = Set(services.keys).union(self.services.keys).filter { services[$0] != self.services[$0] }
            let sliceChanges = Set(slices.keys).union(self.slices.keys).filter { slices[$0] != self.slices[$0] }
            let nodeChanged = nodes != self.nodes
            if hasSynced {
                for id in sliceChanges { noteTrigger(old: self.slices[id], new: slices[id]) }
            }
            pendingServiceChanges += serviceChanges.count
            pendingEndpointChanges += sliceChanges.count
            if nodeChanged { pendingNodeChanges += 1 }
            for id in serviceChanges { setService(id, services[id]) }
            for id in sliceChanges { setSlice(id, slices[id]) }
            self.nodes = nodes
            let first = !hasSynced
            hasSynced = true
            return first || !serviceChanges.isEmpty || !sliceChanges.isEmpty || nodeChanged
        case .upsert(let object):
            let id = ProxyObjectID(object)
            switch object {
            case .service(let service):
                guard services[id] != service else { return false }
                setService(id, service)
                pendingServiceChanges += 1
            case .endpointSlice(let slice):
                guard slices[id] != slice else { return false }
                if hasSynced { noteTrigger(old: slices[id], new: slice) }
                setSlice(id, slice)
                pendingEndpointChanges += 1
            case .node(let node):
                guard nodes[node.metadata.name] != node else { return false }
                nodes[node.metadata.name] = node
                pendingNodeChanges += 1
            }
            return true
        case .delete(let id):
            switch id.kind {
            case .service:
                guard services[id] != nil else { return false }
                setService(id, nil)
                pendingServiceChanges += 1
            case .endpointSlice:
                guard let old = slices[id] else { return false }
                if hasSynced { noteTrigger(old: old, new: nil) }
                setSlice(id, nil)
                pendingEndpointChanges += 1
            case .node:
                guard nodes.removeValue(forKey: id.name) != nil else { return false }
                pendingNodeChanges += 1
            }
            return true
        }
    }

    /// kube-proxy records a slice's trigger time when the annotation is new or changed; a deleted
    /// slice's last value counts too.
    private mutating func noteTrigger(old: EndpointSlice?, new: EndpointSlice?) {
        let oldTime = old?.metadata.annotations[Self.triggerTimeAnnotation]
        let newTime = new?.metadata.annotations[Self.triggerTimeAnnotation]
        let text = new == nil ? oldTime : (newTime != oldTime ? newTime : nil)
        if let text, let date = Self.parseTimestamp(text) { pendingTriggerTimes.append(date) }
    }

    /// The pending counts and trigger times, reset to zero (at the start of a sync).
    mutating func takePending() -> (services: Int, endpoints: Int, nodes: Int, triggerTimes: [Date]) {
        defer {
            pendingServiceChanges = 0
            pendingEndpointChanges = 0
            pendingNodeChanges = 0
            pendingTriggerTimes = []
        }
        return (pendingServiceChanges, pendingEndpointChanges, pendingNodeChanges, pendingTriggerTimes)
    }

    /// Puts back what a failed sync took, so the next attempt still reports it.
    mutating func restorePending(_ pending: (services: Int, endpoints: Int, nodes: Int, triggerTimes: [Date])) {
        pendingServiceChanges += pending.services
        pendingEndpointChanges += pending.endpoints
        pendingNodeChanges += pending.nodes
        pendingTriggerTimes = pending.triggerTimes + pendingTriggerTimes
    }

    func zone(ofNode name: String) -> String? {
        nodes[name]?.metadata.labels[EndpointSelection.zoneLabel].flatMap { $0.isEmpty ? nil : $0 }
    }

    // MARK: Incremental snapshot

    /// Slices by the Service they name, so a change rebuilds only its Service's entries.
    private var slicesByService: [NamespacedName: Set<ProxyObjectID>] = [:]
    private var dirtyServices: Set<NamespacedName> = []
    private var builtPorts: [NamespacedName: [ServicePortName]] = [:]
    private var skippedByService: [NamespacedName: [SkippedObject]] = [:]
    /// Slices that name no Service: skipped whatever the Services are.
    private var unattachedSkips: [ProxyObjectID: SkippedObject] = [:]
    private var table = ServiceTable()
    private var builtWith: ServiceTableBuilder?

    private static func serviceKey(_ id: ProxyObjectID) -> NamespacedName { NamespacedName(id.namespace, id.name) }

    private static func serviceKey(of slice: EndpointSlice) -> NamespacedName? {
        slice.serviceName.map { NamespacedName(slice.metadata.namespace ?? "default", $0) }
    }

    private mutating func setService(_ id: ProxyObjectID, _ service: Service?) {
        services[id] = service
        dirtyServices.insert(Self.serviceKey(id))
    }

    private mutating func setSlice(_ id: ProxyObjectID, _ slice: EndpointSlice?) {
        if let old = slices[id], let key = Self.serviceKey(of: old) {
            slicesByService[key]?.remove(id)
            if slicesByService[key]?.isEmpty == true { slicesByService[key] = nil }
            dirtyServices.insert(key)
        }
        slices[id] = slice
        unattachedSkips[id] = nil
        guard let slice else { return }
        if let key = Self.serviceKey(of: slice) {
            slicesByService[key, default: []].insert(id)
            dirtyServices.insert(key)
        } else if let skip = ServiceTableBuilder(nodeName: "").build(services: [], slices: [slice]).skipped.first {
            unattachedSkips[id] = skip
        }
    }

    /// The snapshot for this node: only Services whose objects changed since the last call are
    /// rebuilt (all of them when the node's name or zone or the options changed). Equal to
    /// `ServiceTableBuilder.build` over every object.
    mutating func build(nodeName: String, options: ProxyOptions = ProxyOptions()) -> ServiceTableBuilder.Result {
        let builder = ServiceTableBuilder(nodeName: nodeName, zone: zone(ofNode: nodeName), options: options)
        if builder != builtWith {
            builtWith = builder
            dirtyServices.formUnion(services.keys.map(Self.serviceKey))
            dirtyServices.formUnion(slicesByService.keys)
            dirtyServices.formUnion(builtPorts.keys)
        }
        let parent = table
        var changed: Set<ServicePortName> = []
        for key in dirtyServices {
            let service = services[ProxyObjectID(kind: .service, namespace: key.namespace, name: key.name)]
            let slices = (slicesByService[key] ?? []).sorted().compactMap { self.slices[$0] }
            let result = builder.build(services: service.map { [$0] } ?? [], slices: slices)
            for name in builtPorts[key] ?? [] {
                table.ports[name] = nil
                changed.insert(name)
            }
            for (name, entry) in result.table.ports {
                table.ports[name] = entry
                changed.insert(name)
            }
            builtPorts[key] = result.table.ports.isEmpty ? nil : Array(result.table.ports.keys)
            skippedByService[key] = result.skipped.isEmpty ? nil : result.skipped
        }
        dirtyServices = []
        table.recordChanges(changed, since: parent)
        let skipped = (skippedByService.values.flatMap { $0 } + unattachedSkips.values).sorted()
        return ServiceTableBuilder.Result(table: table, skipped: skipped)
    }

    /// RFC 3339 as the API server writes it (`2024-05-01T12:00:00Z`, fractional seconds allowed).
    static func parseTimestamp(_ text: String) -> Date? {
        if let date = try? Date(text, strategy: Date.ISO8601FormatStyle(includingFractionalSeconds: true)) {
            return date
        }
        return try? Date(text, strategy: Date.ISO8601FormatStyle())
    }
}

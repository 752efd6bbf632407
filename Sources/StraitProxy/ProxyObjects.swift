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
            self.services = services
            self.slices = slices
            self.nodes = nodes
            let first = !hasSynced
            hasSynced = true
            return first || !serviceChanges.isEmpty || !sliceChanges.isEmpty || nodeChanged
        case .upsert(let object):
            let id = ProxyObjectID(object)
            switch object {
            case .service(let service):
                guard services[id] != service else { return false }
                services[id] = service
                pendingServiceChanges += 1
            case .endpointSlice(let slice):
                guard slices[id] != slice else { return false }
                if hasSynced { noteTrigger(old: slices[id], new: slice) }
                slices[id] = slice
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
                guard services.removeValue(forKey: id) != nil else { return false }
                pendingServiceChanges += 1
            case .endpointSlice:
                guard let old = slices.removeValue(forKey: id) else { return false }
                if hasSynced { noteTrigger(old: old, new: nil) }
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

    func build(nodeName: String) -> ServiceTableBuilder.Result {
        let builder = ServiceTableBuilder(nodeName: nodeName, zone: zone(ofNode: nodeName))
        return builder.build(services: services.keys.sorted().map { services[$0]! },
                             slices: slices.keys.sorted().map { slices[$0]! })
    }

    /// RFC 3339 as the API server writes it (`2024-05-01T12:00:00Z`, fractional seconds allowed).
    static func parseTimestamp(_ text: String) -> Date? {
        if let date = try? Date(text, strategy: Date.ISO8601FormatStyle(includingFractionalSeconds: true)) {
            return date
        }
        return try? Date(text, strategy: Date.ISO8601FormatStyle())
    }
}

import StraitNetlink

/// The requests that turn one set of virtual services into another: only the differences, in an
/// order the kernel accepts (real servers leave before their service; a service exists before its
/// real servers arrive).
public struct IPVSChanges: Sendable, Hashable {
    public var deletedDestinations: [IPVSDestinationChange] = []
    public var deletedServices: [IPVSService] = []
    public var addedServices: [IPVSService] = []
    public var updatedServices: [IPVSService] = []
    public var addedDestinations: [IPVSDestinationChange] = []
    public var updatedDestinations: [IPVSDestinationChange] = []

    /// No changes.
    public init() {}

    /// Adds `other`'s changes after these, kind by kind, so the order stays one the kernel accepts.
    public mutating func append(_ other: IPVSChanges) {
        deletedDestinations += other.deletedDestinations
        deletedServices += other.deletedServices
        addedServices += other.addedServices
        updatedServices += other.updatedServices
        addedDestinations += other.addedDestinations
        updatedDestinations += other.updatedDestinations
    }

    /// The differences from `current` (the last sync's result, or the kernel's dump for a full sync,
    /// which also repairs what `ipvsadm` changed by hand) to `desired`.
    public init(from current: IPVSVirtualServers, to desired: IPVSVirtualServers) {
        for (key, service) in byIdentity(current.services) {
            guard desired.services[key] != nil else {
                // Deleting the service takes its real servers with it.
                deletedServices.append(service)
                continue
            }
            let wanted = desired.destinations[key] ?? [:]
            for (realKey, destination) in current.destinations[key] ?? [:] where wanted[realKey] == nil {
                deletedDestinations.append(IPVSDestinationChange(destination, service))
            }
        }
        for (key, service) in byIdentity(desired.services) {
            let existing = current.services[key]
            if existing == nil {
                addedServices.append(service)
            } else if existing != service {
                updatedServices.append(service)
            }
            let have = existing == nil ? [:] : current.destinations[key] ?? [:]
            for (realKey, destination) in byIdentity(desired.destinations[key] ?? [:]) {
                if let present = have[realKey] {
                    if present != destination {
                        updatedDestinations.append(IPVSDestinationChange(destination, service))
                    }
                } else {
                    addedDestinations.append(IPVSDestinationChange(destination, service))
                }
            }
        }
        deletedDestinations.sort {
            let (a, b) = (IPVSRealAddress($0.destination), IPVSRealAddress($1.destination))
            return a != b ? a < b : IPVSVirtualAddress($0.service) < IPVSVirtualAddress($1.service)
        }
    }

    public var isEmpty: Bool { count == 0 }

    /// How many requests applying these changes sends.
    public var count: Int {
        deletedDestinations.count + deletedServices.count + addedServices.count + updatedServices.count
            + addedDestinations.count + updatedDestinations.count
    }

    /// Sends every change over `connection`, in order; stops at the first refusal and throws it.
    public func apply(to connection: some IPVSKernel) throws {
        for change in deletedDestinations {
            try connection.deleteDestination(change.destination, from: change.service)
        }
        for service in deletedServices { try connection.deleteService(service) }
        for service in addedServices { try connection.addService(service) }
        for service in updatedServices { try connection.updateService(service) }
        for change in addedDestinations { try connection.addDestination(change.destination, to: change.service) }
        for change in updatedDestinations {
            try connection.updateDestination(change.destination, in: change.service)
        }
    }
}

/// The entries of `dictionary` ordered by their identity (no text made): the same differences,
/// always in the same order.
private func byIdentity<Key: Comparable, Value>(_ dictionary: [Key: Value]) -> [(key: Key, value: Value)] {
    dictionary.sorted { $0.key < $1.key }
}

/// One real server to add, edit or delete, with the virtual service it belongs to.
public struct IPVSDestinationChange: Sendable, Hashable {
    public let destination: IPVSDestination
    public let service: IPVSService

    public init(_ destination: IPVSDestination, _ service: IPVSService) {
        self.destination = destination
        self.service = service
    }
}

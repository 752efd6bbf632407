#if canImport(Glibc)
import Glibc
#endif
import Synchronization

/// The kernel's IPVS table in memory, for rootless tests of code that programs IPVS and for measuring
/// that code's own cost on a kernel without IPVS (as `FakeNFTKernel` serves nftables). It checks
/// requests as `IPVSConnection` does and answers as the kernel does where it matters to a caller: a
/// service or destination added twice fails with `EEXIST`, a service edited, deleted or used that is
/// not there with `ESRCH`, a destination edited or deleted that is not there with `ENOENT`; deleting a
/// service takes its destinations; addresses are read back in `inet_ntop`'s spelling.
public final class FakeIPVSKernel: IPVSKernel {
    /// One request that changed the table, in the order it came (for tests that count or inspect them).
    public enum Request: Sendable, Hashable {
        case addService(IPVSService)
        case updateService(IPVSService)
        case deleteService(IPVSService)
        case addDestination(IPVSDestination, IPVSService)
        case updateDestination(IPVSDestination, IPVSService)
        case deleteDestination(IPVSDestination, IPVSService)
        case setTimeouts(IPVSTimeouts)
    }

    private struct Key: Hashable {
        let ipProtocol: IPVSProtocol
        let address: String
        let port: UInt16
    }

    private struct Entry {
        var service: IPVSService
        /// By canonical address and port, in the order added.
        var destinations: [Key: IPVSDestinationInfo] = [:]
        var order: [Key] = []
    }

    private struct State {
        var services: [Key: Entry] = [:]
        var order: [Key] = []
        var timeouts = IPVSTimeouts()
        var connectionTracking = false
        var log: [Request] = []
    }

    private let state = Mutex(State())

    public init() {}

    /// Every request that changed the table so far.
    public var requests: [Request] { state.withLock { $0.log } }

    /// Forgets the requests seen so far (the table stays).
    public func clearRequests() { state.withLock { $0.log = [] } }

    /// The timeouts last set (0 where never set).
    public var timeouts: IPVSTimeouts { state.withLock { $0.timeouts } }

    /// Whether `enableConnectionTracking()` was called.
    public var tracksConnections: Bool { state.withLock { $0.connectionTracking } }

    /// Sets a destination's connection counts, as traffic through it would; ENOENT when it is not there.
    public func setConnections(of destination: IPVSDestination, in service: IPVSService, active: UInt32,
                               inactive: UInt32) throws {
        let operation = "set connections of IPVS destination"
        let (serviceKey, key) = try keys(destination, service, operation, configuration: false)
        try state.withLock { state in
            guard let info = state.services[serviceKey]?.destinations[key] else {
                throw missing(operation, "\(destination) in \(service)", ENOENT)
            }
            state.services[serviceKey]!.destinations[key] = IPVSDestinationInfo(
                destination: info.destination, activeConnections: active, inactiveConnections: inactive,
                persistentConnections: info.persistentConnections)
        }
    }

    // MARK: IPVSKernel

    public func services() throws -> [IPVSService] {
        state.withLock { state in state.order.map { state.services[$0]!.service } }
    }

    public func destinations(of service: IPVSService) throws -> [IPVSDestinationInfo] {
        let key = try serviceKey(service, "list IPVS destinations")
        return state.withLock { state in
            guard let entry = state.services[key] else { return [] }
            return entry.order.map { entry.destinations[$0]! }
        }
    }

    public func addService(_ service: IPVSService) throws {
        let operation = "add IPVS service"
        let key = try configuredServiceKey(service, operation)
        try state.withLock { state in
            guard state.services[key] == nil else { throw exists(operation, service.description) }
            var stored = service
            stored.address = key.address
            state.services[key] = Entry(service: stored)
            state.order.append(key)
            state.log.append(.addService(service))
        }
    }

    public func updateService(_ service: IPVSService) throws {
        let operation = "edit IPVS service"
        let key = try configuredServiceKey(service, operation)
        try state.withLock { state in
            guard state.services[key] != nil else { throw missing(operation, service.description, ESRCH) }
            var stored = service
            stored.address = key.address
            state.services[key]!.service = stored
            state.log.append(.updateService(service))
        }
    }

    public func deleteService(_ service: IPVSService) throws {
        let operation = "delete IPVS service"
        let key = try serviceKey(service, operation)
        try state.withLock { state in
            guard state.services.removeValue(forKey: key) != nil else {
                throw missing(operation, service.description, ESRCH)
            }
            state.order.removeAll { $0 == key }
            state.log.append(.deleteService(service))
        }
    }

    public func addDestination(_ destination: IPVSDestination, to service: IPVSService) throws {
        let operation = "add IPVS destination", object = "\(destination) in \(service)"
        let (serviceKey, key) = try keys(destination, service, operation, configuration: true)
        try state.withLock { state in
            guard var entry = state.services[serviceKey] else { throw missing(operation, object, ESRCH) }
            guard entry.destinations[key] == nil else { throw exists(operation, object) }
            var stored = destination
            stored.address = key.address
            entry.destinations[key] = IPVSDestinationInfo(destination: stored, activeConnections: 0,
                                                          inactiveConnections: 0, persistentConnections: 0)
            entry.order.append(key)
            state.services[serviceKey] = entry
            state.log.append(.addDestination(destination, service))
        }
    }

    public func updateDestination(_ destination: IPVSDestination, in service: IPVSService) throws {
        let operation = "edit IPVS destination", object = "\(destination) in \(service)"
        let (serviceKey, key) = try keys(destination, service, operation, configuration: true)
        try state.withLock { state in
            guard state.services[serviceKey] != nil else { throw missing(operation, object, ESRCH) }
            guard let info = state.services[serviceKey]!.destinations[key] else {
                throw missing(operation, object, ENOENT)
            }
            var stored = destination
            stored.address = key.address
            state.services[serviceKey]!.destinations[key] = IPVSDestinationInfo(
                destination: stored, activeConnections: info.activeConnections,
                inactiveConnections: info.inactiveConnections, persistentConnections: info.persistentConnections)
            state.log.append(.updateDestination(destination, service))
        }
    }

    public func deleteDestination(_ destination: IPVSDestination, from service: IPVSService) throws {
        let operation = "delete IPVS destination", object = "\(destination) in \(service)"
        let (serviceKey, key) = try keys(destination, service, operation, configuration: false)
        try state.withLock { state in
            guard state.services[serviceKey] != nil else { throw missing(operation, object, ESRCH) }
            guard state.services[serviceKey]!.destinations.removeValue(forKey: key) != nil else {
                throw missing(operation, object, ENOENT)
            }
            state.services[serviceKey]!.order.removeAll { $0 == key }
            state.log.append(.deleteDestination(destination, service))
        }
    }

    public func setTimeouts(_ timeouts: IPVSTimeouts) throws {
        try IPVSConnection.validate(timeouts, "set IPVS timeouts")
        state.withLock { state in
            if timeouts.tcp != 0 { state.timeouts.tcp = timeouts.tcp }
            if timeouts.tcpFin != 0 { state.timeouts.tcpFin = timeouts.tcpFin }
            if timeouts.udp != 0 { state.timeouts.udp = timeouts.udp }
            state.log.append(.setTimeouts(timeouts))
        }
    }

    public func enableConnectionTracking() throws {
        state.withLock { $0.connectionTracking = true }
    }

    // MARK: Checks

    private func serviceKey(_ service: IPVSService, _ operation: String) throws(NetlinkError) -> Key {
        let address = try IPVSConnection.validatedAddress(of: service, operation)
        return Key(ipProtocol: service.ipProtocol, address: address.text, port: service.port)
    }

    private func configuredServiceKey(_ service: IPVSService, _ operation: String) throws(NetlinkError) -> Key {
        try IPVSConnection.validateConfiguration(of: service, operation)
        return try serviceKey(service, operation)
    }

    private func keys(_ destination: IPVSDestination, _ service: IPVSService, _ operation: String,
                      configuration: Bool) throws(NetlinkError) -> (service: Key, destination: Key) {
        let (serviceAddress, address) = try IPVSConnection.validatedAddresses(
            of: destination, in: service, operation, configuration: configuration)
        return (Key(ipProtocol: service.ipProtocol, address: serviceAddress.text, port: service.port),
                // A destination's identity within its service: address and port (the protocol is the service's).
                Key(ipProtocol: service.ipProtocol, address: address.text, port: destination.port))
    }
}

/// The kernel's EEXIST.
private func exists(_ operation: String, _ object: String) -> NetlinkError {
    NetlinkError(operation: operation, object: object, code: .objectExists, errno: EEXIST)
}

/// The kernel's ESRCH (no such service) or ENOENT (no such destination).
private func missing(_ operation: String, _ object: String, _ errno: Int32) -> NetlinkError {
    NetlinkError(operation: operation, object: object, code: .objectNotFound, errno: errno)
}

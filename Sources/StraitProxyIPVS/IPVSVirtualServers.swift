import StraitModel
import StraitNetlink
import StraitProxy

/// The IPVS virtual services one family's plans ask for, each with its real servers: the IPVS
/// mode's translation of the plan, and nothing more (the plan already chose pools and fates).
///
/// A virtual service for each cluster IP, external IP and load-balancer IP at the Service port,
/// and for each node address at the node port, as kube-proxy's IPVS proxier makes them. Real
/// servers come from the pool the address's fate forwards to; a dropped or rejected address keeps
/// its virtual service with no real servers (the packet filter answers those packets).
public struct IPVSVirtualServers: Sendable, Hashable {
    /// By identity (protocol, address, port): the service, with its scheduler and persistence.
    public private(set) var services: [IPVSVirtualAddress: IPVSService] = [:]
    /// By the same identity: the real servers, by theirs (address, port).
    public private(set) var destinations: [IPVSVirtualAddress: [IPVSRealAddress: IPVSDestination]] = [:]

    public init() {}

    /// Translates `plans` (one family's), with `scheduler` for every service and `nodeAddresses`
    /// (this node's addresses of any family; the plan's family is picked) for node ports.
    public init(plans: [ServicePortPlan], scheduler: String, nodeAddresses: [IPAddress]) {
        for plan in plans {
            guard let ipProtocol = IPVSProtocol(plan.protocol) else { continue }
            let persistence = plan.affinityTimeout.map { UInt32(clamping: $0) }
            func serve(_ address: IPAddress, _ port: UInt16, _ fate: TrafficFate) {
                let service = IPVSService(ipProtocol, address: address.description, port: port, scheduler: scheduler,
                                          persistenceTimeout: persistence)
                let pool: [ProxyEndpoint] = if case .forward(let pool) = fate { plan.endpoints(of: pool) } else { [] }
                insert(service, pool.map { IPVSDestination(address: $0.address.description, port: $0.port) })
            }
            for address in plan.clusterIPs { serve(address, plan.port, plan.clusterIPTraffic) }
            guard let external = plan.externalTraffic else { continue }
            for address in plan.externalIPs + plan.loadBalancerIPs { serve(address, plan.port, external) }
            if let nodePort = plan.nodePort {
                for address in nodeAddresses where address.family == plan.family { serve(address, nodePort, external) }
            }
        }
    }

    /// What the kernel holds, read back (`IPVSConnection.services()` and `destinations(of:)`).
    public init(kernel services: [IPVSService], destinations: (IPVSService) throws -> [IPVSDestination]) rethrows {
        for service in services { insert(service, try destinations(service)) }
    }

    /// Adds (or replaces) one real server of the service at `key`, which must be there.
    public mutating func insert(_ destination: IPVSDestination, at key: IPVSVirtualAddress) {
        precondition(services[key] != nil, "a real server needs its virtual service")
        destinations[key, default: [:]][IPVSRealAddress(destination)] = destination
    }

    /// Adds every service of `other` with its real servers (one of `other`'s replaces one here at the same identity).
    public mutating func merge(_ other: IPVSVirtualServers) {
        services.merge(other.services) { _, theirs in theirs }
        destinations.merge(other.destinations) { _, theirs in theirs }
    }

    /// Adds `service` with `destinations`; a second service at the same identity replaces the first.
    public mutating func insert(_ service: IPVSService, _ destinations: [IPVSDestination]) {
        let key = IPVSVirtualAddress(service)
        services[key] = service
        self.destinations[key] = Dictionary(destinations.map { (IPVSRealAddress($0), $0) }) { first, _ in first }
    }
}

/// A virtual service's identity: protocol, address, port; ordered by address, port, protocol.
public struct IPVSVirtualAddress: Sendable, Hashable, Comparable {
    public let ipProtocol: IPVSProtocol
    public let address: String
    public let port: UInt16

    public init(_ service: IPVSService) {
        ipProtocol = service.ipProtocol
        address = service.address
        port = service.port
    }

    public static func < (a: Self, b: Self) -> Bool {
        a.address != b.address ? a.address < b.address
            : a.port != b.port ? a.port < b.port : a.ipProtocol.rawValue < b.ipProtocol.rawValue
    }
}

/// A real server's identity within its virtual service: address, port; ordered by address, port.
public struct IPVSRealAddress: Sendable, Hashable, Comparable {
    public let address: String
    public let port: UInt16

    public init(_ destination: IPVSDestination) {
        address = destination.address
        port = destination.port
    }

    public static func < (a: Self, b: Self) -> Bool { a.address != b.address ? a.address < b.address : a.port < b.port }
}

extension IPVSProtocol {
    /// The IPVS protocol of a Service port; nil for a protocol IPVS does not balance.
    init?(_ transport: TransportProtocol) {
        switch transport {
        case .tcp: self = .tcp
        case .udp: self = .udp
        case .sctp: self = .sctp
        default: return nil
        }
    }
}

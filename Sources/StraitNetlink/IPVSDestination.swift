/// How IPVS hands a packet to a destination.
public enum IPVSForwarding: UInt32, Sendable, Hashable, CustomStringConvertible {
    /// NAT: the destination address and port are rewritten (kube-proxy uses only this).
    case masquerade = 0
    case local = 1
    case tunnel = 2
    case directRouting = 3

    /// "Masq", "Local", "Tunnel", "Route", as `ipvsadm -Ln` prints it.
    public var description: String {
        switch self {
        case .masquerade: "Masq"
        case .local: "Local"
        case .tunnel: "Tunnel"
        case .directRouting: "Route"
        }
    }
}

/// A real server of an IPVS virtual service. Address and port identify it within its service.
public struct IPVSDestination: Sendable, Hashable, CustomStringConvertible {
    /// In the service's family: "10.244.1.5", "fd00:244:1::5".
    public var address: String
    /// 1-65535.
    public var port: UInt16
    /// Its share of new connections relative to the other destinations; 0 takes no new ones
    /// (graceful termination), which only weighted schedulers and rr honour.
    public var weight: Int32
    public var forwarding: IPVSForwarding
    /// No new connections above this many; 0 is no limit.
    public var upperThreshold: UInt32
    /// New connections again below this many, once the upper threshold was hit; 0 is none.
    public var lowerThreshold: UInt32

    public init(address: String, port: UInt16, weight: Int32 = 1, forwarding: IPVSForwarding = .masquerade,
                upperThreshold: UInt32 = 0, lowerThreshold: UInt32 = 0) {
        self.address = address
        self.port = port
        self.weight = weight
        self.forwarding = forwarding
        self.upperThreshold = upperThreshold
        self.lowerThreshold = lowerThreshold
    }

    /// "10.244.1.5:8080", "[fd00::5]:8080".
    public var description: String { endpointText(address, port) }
}

/// A destination as the kernel reports it: its configuration and its connection counts.
public struct IPVSDestinationInfo: Sendable, Hashable {
    public let destination: IPVSDestination
    /// Connections in the established state.
    public let activeConnections: UInt32
    /// Connections in any other state (opening, closing, TIME_WAIT, UDP).
    public let inactiveConnections: UInt32
    /// Persistence templates pointing at this destination.
    public let persistentConnections: UInt32

    public init(destination: IPVSDestination, activeConnections: UInt32, inactiveConnections: UInt32,
                persistentConnections: UInt32) {
        self.destination = destination
        self.activeConnections = activeConnections
        self.inactiveConnections = inactiveConnections
        self.persistentConnections = persistentConnections
    }
}

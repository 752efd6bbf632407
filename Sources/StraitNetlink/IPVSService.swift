#if canImport(Glibc)
import Glibc
#endif

/// The transport protocol of an IPVS virtual service (`IPPROTO_*`).
public enum IPVSProtocol: UInt16, Sendable, Hashable, CustomStringConvertible {
    case tcp = 6
    case udp = 17
    case sctp = 132

    /// "TCP", "UDP", "SCTP", as `ipvsadm -Ln` prints it.
    public var description: String {
        switch self {
        case .tcp: "TCP"
        case .udp: "UDP"
        case .sctp: "SCTP"
        }
    }
}

/// An IPVS virtual service: an address, protocol and port that the kernel balances over its
/// destinations. Protocol, address and port identify it; the rest is its configuration.
public struct IPVSService: Sendable, Hashable, CustomStringConvertible {
    public var ipProtocol: IPVSProtocol
    /// "10.96.0.10" or "fd00:96::10". Read back in `inet_ntop`'s canonical form.
    public var address: String
    /// 1-65535.
    public var port: UInt16
    /// The scheduler module's name: "rr" (kube-proxy's default), "wrr", "lc", "sh", "mh", …
    public var scheduler: String
    /// Seconds a client stays with the destination it got first (ClientIP affinity);
    /// `nil` when the service is not persistent.
    public var persistenceTimeout: UInt32?
    /// How many leading bits of the client address persistence groups clients by; `nil` is a host
    /// (32 or 128 bits), each client on its own. Only meaningful with `persistenceTimeout`.
    public var persistencePrefixLength: UInt8?

    public init(_ ipProtocol: IPVSProtocol = .tcp, address: String, port: UInt16, scheduler: String = "rr",
                persistenceTimeout: UInt32? = nil, persistencePrefixLength: UInt8? = nil) {
        self.ipProtocol = ipProtocol
        self.address = address
        self.port = port
        self.scheduler = scheduler
        self.persistenceTimeout = persistenceTimeout
        self.persistencePrefixLength = persistencePrefixLength
    }

    /// Whether the service address is IPv6.
    public var isIPv6: Bool { address.contains(":") }

    /// "TCP 10.96.0.10:80", "UDP [fd00::10]:53": the service's identity, as ipvsadm prints it.
    public var description: String { "\(ipProtocol) \(endpointText(address, port))" }
}

/// "10.0.0.1:80" or "[fd00::1]:80".
func endpointText(_ address: String, _ port: UInt16) -> String {
    address.contains(":") ? "[\(address)]:\(port)" : "\(address):\(port)"
}

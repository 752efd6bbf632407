/// IPVS's idle timeouts for the connections it tracks, in whole seconds, per network namespace:
/// established TCP, TCP after a FIN, and UDP. 0 in a request leaves that timeout as it is (the
/// kernel's rule, and kube-proxy's meaning of `--ipvs-tcp-timeout=0`).
public struct IPVSTimeouts: Sendable, Hashable, CustomStringConvertible {
    /// The largest timeout the kernel takes on every configuration: it keeps jiffies in an int, and
    /// refuses more than `INT_MAX / HZ` seconds (HZ is at most 1000).
    public static let maximum: UInt32 = UInt32(Int32.max) / 1000

    /// Established TCP connections (`ipvsadm --set TCP …`, `--ipvs-tcp-timeout`).
    public var tcp: UInt32
    /// TCP connections after a FIN (`--ipvs-tcpfin-timeout`).
    public var tcpFin: UInt32
    /// UDP "connections" (`--ipvs-udp-timeout`).
    public var udp: UInt32

    public init(tcp: UInt32 = 0, tcpFin: UInt32 = 0, udp: UInt32 = 0) {
        self.tcp = tcp
        self.tcpFin = tcpFin
        self.udp = udp
    }

    /// kube-proxy's durations in whole seconds, truncated as kube-proxy truncates them (a value above
    /// `maximum` stays above it, for `IPVSConnection.setTimeouts` to refuse).
    public init(tcp: Duration, tcpFin: Duration, udp: Duration) {
        func seconds(_ duration: Duration) -> UInt32 { UInt32(clamping: max(0, duration.components.seconds)) }
        self.init(tcp: seconds(tcp), tcpFin: seconds(tcpFin), udp: seconds(udp))
    }

    /// Whether every timeout is 0, so setting them changes nothing.
    public var isEmpty: Bool { tcp == 0 && tcpFin == 0 && udp == 0 }

    /// "tcp 900 tcpfin 120 udp 300", as `ipvsadm -L --timeout` orders them.
    public var description: String { "tcp \(tcp) tcpfin \(tcpFin) udp \(udp)" }
}

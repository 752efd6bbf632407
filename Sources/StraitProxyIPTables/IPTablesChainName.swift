import StraitModel
import StraitProxy

/// The name of one kube-proxy chain: a prefix and 16 base32 characters of
/// sha256(servicePortName + protocol [+ endpoint]), exactly as kube-proxy names them, so the rules
/// read the same as upstream's (and tools that look for `KUBE-SVC-…` keep working).
/// iptables chain names are at most 28 characters; these are at most 25.
public enum IPTablesChainName {
    /// Chains Strait makes once per table (not per service).
    public static let services = "KUBE-SERVICES"
    public static let externalServices = "KUBE-EXTERNAL-SERVICES"
    public static let nodePorts = "KUBE-NODEPORTS"
    public static let postrouting = "KUBE-POSTROUTING"
    public static let markMasquerade = "KUBE-MARK-MASQ"
    public static let forward = "KUBE-FORWARD"
    public static let proxyFirewall = "KUBE-PROXY-FIREWALL"

    /// Prefixes of the per-service chains; a chain with one of them is Strait's to delete.
    public static let servicePrefixes = ["KUBE-SVC-", "KUBE-SVL-", "KUBE-EXT-", "KUBE-FW-", "KUBE-SEP-"]

    /// `KUBE-SVC-…`: the service's endpoints under cluster traffic policy.
    public static func cluster(_ name: ServicePortName) -> String { "KUBE-SVC-" + portHash(name) }
    /// `KUBE-SVL-…`: the service's local endpoints (a Local traffic policy).
    public static func local(_ name: ServicePortName) -> String { "KUBE-SVL-" + portHash(name) }
    /// `KUBE-EXT-…`: traffic to NodePort, externalIPs and load-balancer IPs.
    public static func external(_ name: ServicePortName) -> String { "KUBE-EXT-" + portHash(name) }
    /// `KUBE-FW-…`: load-balancer traffic checked against `loadBalancerSourceRanges`.
    public static func firewall(_ name: ServicePortName) -> String { "KUBE-FW-" + portHash(name) }
    /// `KUBE-SEP-…`: one endpoint (`ip:port`, IPv6 in brackets).
    public static func endpoint(_ name: ServicePortName, _ endpoint: ProxyEndpoint) -> String {
        "KUBE-SEP-" + hash(name.description + protocolName(name.protocol) + endpoint.description)
    }

    /// Whether `chain` is a per-service chain (one Strait creates and deletes per service).
    public static func isServiceChain(_ chain: some StringProtocol) -> Bool {
        servicePrefixes.contains { chain.hasPrefix($0) }
    }

    /// The protocol as kube-proxy hashes and matches it: lower case (`tcp`, `udp`, `sctp`).
    public static func protocolName(_ proto: TransportProtocol) -> String { proto.rawValue.lowercased() }

    private static func portHash(_ name: ServicePortName) -> String {
        hash(name.description + protocolName(name.protocol))
    }

    /// The first 16 characters of base32(sha256(text)) (RFC 4648 alphabet): 80 bits, 16 whole characters.
    static func hash(_ text: String) -> String {
        let digest = SHA256.hash(Array(text.utf8))
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567".utf8)
        var out = [UInt8]()
        out.reserveCapacity(16)
        var buffer: UInt64 = 0
        var bits = 0
        var index = 0
        while out.count < 16 {
            buffer = (buffer << 8) | UInt64(digest[index])
            index += 1
            bits += 8
            while bits >= 5 && out.count < 16 {
                bits -= 5
                out.append(alphabet[Int((buffer >> UInt64(bits)) & 31)])
            }
        }
        return String(decoding: out, as: UTF8.self)
    }
}

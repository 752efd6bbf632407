#if canImport(Glibc)
import Glibc
#endif
import StraitModel

/// The node's own addresses, as the proxy needs them: every address on a local interface except
/// loopback and IPv6 link-local ones (kube-proxy's node IPs, for the load-balancer firewall's
/// "the node may reach its own load balancer" rule). Equivalent: `ip -o addr show`.
public enum NodeAddresses {
    /// `includingLoopback` keeps loopback and link-local addresses too (what a `--nodeport-addresses`
    /// range may name for the health check node ports).
    public static func local(includingLoopback: Bool = false) -> [IPAddress] {
        var list: UnsafeMutablePointer<ifaddrs>?
        guard getifaddrs(&list) == 0, let first = list else { return [] }
        defer { freeifaddrs(list) }
        var addresses: Set<IPAddress> = []
        for entry in sequence(first: first, next: { $0.pointee.ifa_next }) {
            guard let socketAddress = entry.pointee.ifa_addr, let address = address(socketAddress) else { continue }
            if !includingLoopback && isLoopbackOrLinkLocal(address) { continue }
            addresses.insert(address)
        }
        return addresses.sorted()
    }

    private static func address(_ socketAddress: UnsafeMutablePointer<sockaddr>) -> IPAddress? {
        var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        switch Int32(socketAddress.pointee.sa_family) {
        case AF_INET:
            var v4 = socketAddress.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { $0.pointee.sin_addr }
            guard inet_ntop(AF_INET, &v4, &text, socklen_t(text.count)) != nil else { return nil }
        case AF_INET6:
            var v6 = socketAddress.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { $0.pointee.sin6_addr }
            guard inet_ntop(AF_INET6, &v6, &text, socklen_t(text.count)) != nil else { return nil }
        default:
            return nil
        }
        return IPAddress(String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
    }

    private static let loopback = [IPCIDR("127.0.0.0/8")!, IPCIDR("::1/128")!, IPCIDR("fe80::/10")!]

    private static func isLoopbackOrLinkLocal(_ address: IPAddress) -> Bool {
        loopback.contains { $0.contains(address) }
    }
}

import StraitModel

/// The addresses of one node subnet that pods may get: everything between the gateway (network + 1,
/// which the bridge holds) and the last usable address. Network, broadcast and gateway are never
/// handed out.
public struct AddressPool: Sendable, Hashable {
    public let subnet: IPCIDR
    public let gateway: IPAddress
    public let first: IPAddress
    public let last: IPAddress

    /// Builds the pool of a subnet given as `10.244.1.0/24` or as an address in it (`10.244.1.1/24`,
    /// as subnet files write it). Refuses subnets with no room for a gateway and one pod.
    public init(subnet text: String) throws(CNIError) {
        let subnet: IPCIDR
        do throws(AddressError) { subnet = try IPCIDR(parsing: text).masked } catch {
            throw CNIError(.invalidNetworkConfig, "subnet \"\(text)\" is not a CIDR", details: error.description)
        }
        let bounds: (gateway: IPAddress, first: IPAddress, last: IPAddress)?
        switch subnet {
        case .v4(let cidr): bounds = Self.bounds(cidr).map { (.v4($0.0), .v4($0.1), .v4($0.2)) }
        case .v6(let cidr): bounds = Self.bounds(cidr).map { (.v6($0.0), .v6($0.1), .v6($0.2)) }
        }
        guard let bounds else {
            throw CNIError(.invalidNetworkConfig, "subnet \(subnet) is too small for a gateway and a pod")
        }
        self.subnet = subnet
        (gateway, first, last) = bounds
    }

    private static func bounds<A>(_ cidr: CIDR<A>) -> (A, A, A)? {
        guard cidr.hostBitCount >= 2, let gateway = cidr.network.next, let first = gateway.next,
              first <= cidr.lastUsable else { return nil }
        return (gateway, first, cidr.lastUsable)
    }

    public var family: IPFamily { subnet.family }

    /// True when `address` may be leased to a pod.
    public func contains(_ address: IPAddress) -> Bool {
        subnet.contains(address) && first <= address && address <= last
    }

    /// The address after `address`, wrapping from the last back to the first.
    func successor(of address: IPAddress) -> IPAddress {
        guard contains(address), address != last, let next = address.next else { return first }
        return next
    }

    /// How many addresses the pool holds, capped where it no longer matters (IPv6).
    var capacity: UInt64 {
        switch (first, last) {
        case (.v4(let a), .v4(let b)): UInt64(b.rawValue - a.rawValue) + 1
        case (.v6(let a), .v6(let b)): b.distance(from: a).map { $0 == .max ? $0 : $0 + 1 } ?? .max
        default: 0
        }
    }

    /// The prefix the pod's address is reported with: `10.244.1.5/24`.
    func interfaceAddress(_ address: IPAddress) -> String { "\(address)/\(subnet.prefixLength)" }
}

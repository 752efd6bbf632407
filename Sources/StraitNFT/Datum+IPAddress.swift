import StraitModel

extension Datum {
    /// The wire value of an address: IPv4 or IPv6 by its family.
    @inlinable
    public init(_ address: IPAddress) {
        switch address {
        case .v4(let v4): self.init(ipv4: v4.rawValue)
        case .v6(let v6): self.init(ipv6High: v6.high, low: v6.low)
        }
    }
}

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

    /// The address an `ipv4` or `ipv6` value holds (the inverse of `init(_:)`); nil for any other value.
    public var address: IPAddress? {
        switch value {
        case .ipv4(let network): .v4(IPv4Address(UInt32(bigEndian: network)))
        case .ipv6(let high, let low): .v6(IPv6Address(high: UInt64(bigEndian: high), low: UInt64(bigEndian: low)))
        default: nil
        }
    }
}

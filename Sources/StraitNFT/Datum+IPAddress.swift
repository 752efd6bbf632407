import StraitModel

extension Datum {
    /// The wire value of an address: `.ipv4` or `.ipv6` by its family.
    public init(_ address: IPAddress) {
        self = address.family == .ipv4 ? .ipv4("\(address)") : .ipv6("\(address)")
    }
}

/// The address family, spelled as Kubernetes spells it in `spec.ipFamilies`.
public enum IPFamily: String, Sendable, Hashable, Codable, CaseIterable, CustomStringConvertible {
    case ipv4 = "IPv4"
    case ipv6 = "IPv6"

    public var description: String { rawValue }
}

/// What `CIDR` needs from an address type: fixed width, masking and checked arithmetic.
/// `IPv4Address` and `IPv6Address` conform; nothing else is expected to.
public protocol IPAddressValue: Sendable, Hashable, Comparable, TextCoded, LosslessStringConvertible {
    static var family: IPFamily { get }
    static var bitWidth: Int { get }
    /// The all-zeros address (`0.0.0.0`, `::`).
    static var zero: Self { get }
    init(parsing text: some StringProtocol) throws(AddressError)
    /// The address with every bit after the first `prefixLength` cleared.
    func masked(prefixLength: Int) -> Self
    /// The address with every bit after the first `prefixLength` set.
    func filled(prefixLength: Int) -> Self
    /// `self + value << shift`, or nil past the last address of the family.
    func adding(_ value: UInt64, shiftedLeftBy shift: Int) -> Self?
    /// `self - value << shift`, or nil before the first address of the family.
    func subtracting(_ value: UInt64, shiftedLeftBy shift: Int) -> Self?
    /// `self - base`, or nil when `base > self` or the distance does not fit 64 bits.
    func distance(from base: Self) -> UInt64?
}

extension IPAddressValue {
    /// The following address, nil after the last one (no wrap-around).
    public var next: Self? { adding(1, shiftedLeftBy: 0) }
    /// The preceding address, nil before the first one (no wrap-around).
    public var previous: Self? { subtracting(1, shiftedLeftBy: 0) }

    /// The address `n` places away, nil if that leaves the address space.
    public func advanced(by n: Int64) -> Self? {
        n >= 0 ? adding(UInt64(n), shiftedLeftBy: 0) : subtracting(n.magnitude, shiftedLeftBy: 0)
    }

    public init?(_ description: String) {
        guard let value = try? Self(parsing: description) else { return nil }
        self = value
    }

}

/// An address with a prefix length: `10.0.0.5/24` (an interface address) or `10.0.0.0/24`
/// (a network). `address` is kept as written; `network` has the host bits cleared.
/// `init(parsing:)` accepts both forms; `init(networkParsing:)` refuses host bits.
///
/// Two values are equal when address and prefix length are: `10.0.0.5/24 != 10.0.0.0/24`.
/// Ordering is by network, then prefix length, then address.
public struct CIDR<Address: IPAddressValue>: Sendable, Hashable, Comparable, TextCoded,
    CustomStringConvertible, LosslessStringConvertible
{
    public let address: Address
    public let prefixLength: Int

    static var errorKind: AddressError.Kind { Address.family == .ipv4 ? .ipv4CIDR : .ipv6CIDR }

    /// Refuses a prefix length outside `0...Address.bitWidth`.
    public init(address: Address, prefixLength: Int) throws(AddressError) {
        guard (0...Address.bitWidth).contains(prefixLength) else {
            throw AddressError(input: "\(address)/\(prefixLength)", kind: Self.errorKind,
                               reason: .prefixLengthOutOfRange(prefixLength, maximum: Address.bitWidth))
        }
        self.address = address
        self.prefixLength = prefixLength
    }

    /// The single-address prefix: `/32` for IPv4, `/128` for IPv6.
    public init(host address: Address) {
        self.address = address
        self.prefixLength = Address.bitWidth
    }

    /// Reads `address/length`; host bits are allowed (`10.0.0.5/24`). The length is decimal
    /// without leading zeros and must be present.
    public init(parsing text: some StringProtocol) throws(AddressError) {
        let input = String(text)
        func fail(_ reason: AddressError.Reason) -> AddressError {
            AddressError(input: input, kind: Self.errorKind, reason: reason)
        }
        if input.isEmpty { throw fail(.empty) }
        guard let slash = input.utf8.firstIndex(of: UInt8(ascii: "/")) else { throw fail(.missingPrefixLength) }
        let addressText = input[..<slash]
        let lengthText = String(input[input.index(after: slash)...])
        let lengthBytes = Array(lengthText.utf8)
        guard !lengthBytes.isEmpty, lengthBytes.count <= 3,
              lengthBytes.allSatisfy({ (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }),
              lengthBytes.count == 1 || lengthBytes[0] != UInt8(ascii: "0"),
              let length = Int(lengthText)
        else { throw fail(.invalidPrefixLength(lengthText)) }
        let parsed: Address
        do {
            parsed = try Address(parsing: addressText)
        } catch {
            throw fail(error.reason)
        }
        guard length <= Address.bitWidth else {
            throw fail(.prefixLengthOutOfRange(length, maximum: Address.bitWidth))
        }
        self.address = parsed
        self.prefixLength = length
    }

    /// Like `init(parsing:)`, but the text must name a network: `10.0.0.5/24` is refused.
    public init(networkParsing text: some StringProtocol) throws(AddressError) {
        let value = try CIDR(parsing: text)
        guard value.isNetwork else {
            throw AddressError(input: String(text), kind: Self.errorKind,
                               reason: .hostBitsSet(network: value.masked.description))
        }
        self = value
    }

    public init?(_ description: String) {
        guard let value = try? CIDR(parsing: description) else { return nil }
        self = value
    }

    public var description: String { "\(address)/\(prefixLength)" }

    /// The first address of the prefix (host bits cleared).
    public var network: Address { address.masked(prefixLength: prefixLength) }

    /// The same prefix with host bits cleared: `10.0.0.5/24` → `10.0.0.0/24`.
    public var masked: CIDR { CIDR(unchecked: network, prefixLength) }

    /// True when no host bits are set.
    public var isNetwork: Bool { address == network }

    /// The last address of the prefix; for IPv4 the broadcast address.
    public var last: Address { address.filled(prefixLength: prefixLength) }

    /// The netmask as an address: `/24` → `255.255.255.0`.
    public var netmask: Address { Address.zero.filled(prefixLength: 0).masked(prefixLength: prefixLength) }

    public var hostBitCount: Int { Address.bitWidth - prefixLength }

    /// How many addresses the prefix holds, nil when that does not fit 64 bits (IPv6 /64 and up).
    public var addressCount: UInt64? {
        hostBitCount < 64 ? UInt64(1) << UInt64(hostBitCount) : nil
    }

    /// The first address a host may use. IPv4 skips the network address up to /30; IPv6 skips
    /// the subnet-router anycast address up to /126. `/31`, `/32`, `/127` and `/128` use all.
    public var firstUsable: Address {
        hostBitCount >= 2 ? network.next! : network
    }

    /// The last address a host may use. IPv4 skips the broadcast address up to /30;
    /// IPv6 has no broadcast, so this is `last`.
    public var lastUsable: Address {
        Address.family == .ipv4 && hostBitCount >= 2 ? last.previous! : last
    }

    public func contains(_ other: Address) -> Bool {
        other.masked(prefixLength: prefixLength) == network
    }

    /// True when every address of `other` is in this prefix.
    public func contains(_ other: CIDR) -> Bool {
        other.prefixLength >= prefixLength && contains(other.network)
    }

    /// True when the two prefixes share at least one address.
    public func overlaps(_ other: CIDR) -> Bool {
        contains(other.network) || other.contains(network)
    }

    /// How many subnets of `prefixLength` this prefix splits into; nil when the length is
    /// shorter than this prefix or longer than the family, or the count does not fit 64 bits.
    public func subnetCount(prefixLength length: Int) -> UInt64? {
        guard length >= prefixLength, length <= Address.bitWidth, length - prefixLength < 64 else { return nil }
        return UInt64(1) << UInt64(length - prefixLength)
    }

    /// The `index`-th subnet (from 0) of length `prefixLength`: `10.0.0.0/16`.subnet(3, 24)
    /// is `10.0.3.0/24`. Nil when the index or the length does not fit.
    public func subnet(_ index: UInt64, prefixLength length: Int) -> CIDR? {
        guard length >= prefixLength, length <= Address.bitWidth else { return nil }
        if length - prefixLength < 64 && index >= UInt64(1) << UInt64(length - prefixLength) { return nil }
        guard let start = network.adding(index, shiftedLeftBy: Address.bitWidth - length) else { return nil }
        return CIDR(unchecked: start, length)
    }

    /// The address `index` places after the network address, nil past the end of the prefix.
    public func address(at index: UInt64) -> Address? {
        guard let candidate = network.adding(index, shiftedLeftBy: 0), contains(candidate) else { return nil }
        return candidate
    }

    /// How far `address` is from the network address, nil when outside the prefix.
    public func index(of other: Address) -> UInt64? {
        contains(other) ? other.distance(from: network) : nil
    }

    /// The adjacent prefix of the same length after this one, nil at the end of the family.
    public var next: CIDR? {
        network.adding(1, shiftedLeftBy: hostBitCount).map { CIDR(unchecked: $0, prefixLength) }
    }

    /// The adjacent prefix of the same length before this one, nil at the start of the family.
    public var previous: CIDR? {
        network.subtracting(1, shiftedLeftBy: hostBitCount).map { CIDR(unchecked: $0, prefixLength) }
    }

    private init(unchecked address: Address, _ prefixLength: Int) {
        self.address = address
        self.prefixLength = prefixLength
    }

    public static func < (lhs: CIDR, rhs: CIDR) -> Bool {
        (lhs.network, lhs.prefixLength) != (rhs.network, rhs.prefixLength)
            ? (lhs.network, lhs.prefixLength) < (rhs.network, rhs.prefixLength)
            : lhs.address < rhs.address
    }

}

public typealias IPv4CIDR = CIDR<IPv4Address>
public typealias IPv6CIDR = CIDR<IPv6Address>

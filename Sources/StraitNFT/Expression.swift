/// One step of a rule, as the kernel's nftables virtual machine runs it. A rule is a list of these;
/// the builders in `Matches.swift` produce the common combinations.
public enum Expression: Sendable, Hashable {
    /// Loads `length` bytes at `offset` of a header into `dreg`. Equivalent: `ip daddr` (a load, no compare).
    case payload(base: PayloadBase, offset: UInt32, length: UInt32, dreg: Register)
    /// Loads packet metadata (`meta l4proto`, `meta mark`) into `dreg`.
    case meta(MetaKey, dreg: Register)
    /// Sets packet metadata from `sreg`. Equivalent: `meta mark set …`.
    case metaSet(MetaKey, sreg: Register)
    /// Compares `sreg` with constant bytes; the rule stops here unless it holds.
    case cmp(CmpOp, sreg: Register, data: [UInt8])
    /// `dreg = (sreg & mask) ^ xor` over `length` bytes.
    case bitwise(sreg: Register, dreg: Register, length: UInt32, mask: [UInt8], xor: [UInt8])
    /// Looks `sreg` up in a named set; with `dreg` (a map) loads the value, `.verdict` for a verdict map.
    case lookup(set: String, sreg: Register, dreg: Register? = nil, inverted: Bool = false)
    /// Looks `sreg` up in an anonymous constant set or map created with the rule (`vmap { 0 : goto a }`).
    case lookupAnonymous(AnonymousSet, sreg: Register, dreg: Register? = nil)
    /// Loads constant bytes into `dreg`.
    case immediate(dreg: Register, data: [UInt8])
    /// Ends the rule with a verdict. Equivalent: `accept`, `jump chain`, `goto chain`.
    case verdict(Verdict)
    /// Loads conntrack state (`ct state`, `ct mark`, …) into `dreg`.
    case ct(CtKey, dreg: Register)
    /// Source or destination NAT to the address (and port) held in registers.
    case nat(NATType, family: Family, addressMin: Register?, addressMax: Register? = nil,
             portMin: Register? = nil, portMax: Register? = nil, flags: NATFlags = [])
    /// Masquerade to the outgoing interface's address. Equivalent: `masquerade fully-random`.
    case masquerade(flags: NATFlags = [], portMin: Register? = nil, portMax: Register? = nil)
    /// A number from 0 to `modulus - 1` (plus `offset`) into `dreg`. Equivalent: `numgen random mod N`.
    case numgen(NumgenType, modulus: UInt32, offset: UInt32 = 0, dreg: Register)
    /// Counts packets and bytes. Equivalent: `counter`.
    case counter
    /// Rejects the packet. Equivalent: `reject`, `reject with tcp reset`.
    case reject(RejectKind)
    /// A routing lookup into `dreg`. Equivalent: `fib daddr type` (flags `.daddr`, result `.addressType`).
    case fib(FibFlags, result: FibResult, dreg: Register)
    /// Adds or updates the key in `sreg` in a dynamic set. Equivalent: `update @affinity { ip saddr }`.
    case dynset(set: String, operation: DynsetOperation, sregKey: Register, sregData: Register? = nil,
                timeout: Duration? = nil)
    /// Logs the packet with a prefix. Equivalent: `log prefix "…"`.
    case log(prefix: String?)
    /// Skips connection tracking. Equivalent: `notrack`.
    case notrack
}

/// A register of the nftables VM. `.verdict` and the 16-byte `reg1`…`reg4` as nft names them;
/// `reg32(n)` addresses the 4-byte registers concatenations are built in (`reg32(0)` is `reg1`).
public struct Register: RawRepresentable, Sendable, Hashable {
    public var rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    public static let verdict = Register(rawValue: 0)
    public static let reg1 = Register(rawValue: 1)
    public static let reg2 = Register(rawValue: 2)
    public static let reg3 = Register(rawValue: 3)
    public static let reg4 = Register(rawValue: 4)
    /// A 4-byte unit that starts a 16-byte register is named as that register (`reg32(4)` is `reg2`),
    /// as the kernel dumps it, so an expression reads back equal to what was written.
    public static func reg32(_ index: UInt32) -> Register {
        index % 4 == 0 ? Register(rawValue: 1 + index / 4) : Register(rawValue: 8 + index)
    }

    /// The 4-byte register `bytes` past this one, for the next field of a concatenation.
    func advanced(byBytes bytes: Int) -> Register {
        let index: UInt32 = rawValue >= 8 ? rawValue - 8 : (rawValue - 1) * 4
        return .reg32(index + UInt32((bytes + 3) / 4))
    }
}

/// Which header a payload expression reads (`NFT_PAYLOAD_*_HEADER`).
public enum PayloadBase: UInt32, Sendable, Hashable {
    case link = 0, network = 1, transport = 2
}

/// Packet metadata keys (`NFT_META_*`).
public struct MetaKey: RawRepresentable, Sendable, Hashable {
    public var rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    public static let length = MetaKey(rawValue: 0)
    public static let protocolNumber = MetaKey(rawValue: 1)
    public static let mark = MetaKey(rawValue: 3)
    public static let iif = MetaKey(rawValue: 4)
    public static let oif = MetaKey(rawValue: 5)
    public static let iifname = MetaKey(rawValue: 6)
    public static let oifname = MetaKey(rawValue: 7)
    public static let nfproto = MetaKey(rawValue: 15)
    public static let l4proto = MetaKey(rawValue: 16)
    public static let pkttype = MetaKey(rawValue: 19)
}

/// Comparison operators (`NFT_CMP_*`).
public enum CmpOp: UInt32, Sendable, Hashable {
    case eq = 0, neq = 1, lt = 2, lte = 3, gt = 4, gte = 5
}

/// Conntrack keys (`NFT_CT_*`).
public struct CtKey: RawRepresentable, Sendable, Hashable {
    public var rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    public static let state = CtKey(rawValue: 0)
    public static let direction = CtKey(rawValue: 1)
    public static let status = CtKey(rawValue: 2)
    public static let mark = CtKey(rawValue: 3)
}

/// Conntrack states as the bits `ct state` compares (`NF_CT_STATE_*_BIT`).
public struct CtState: OptionSet, Sendable, Hashable {
    public var rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    public static let invalid = CtState(rawValue: 1)
    public static let established = CtState(rawValue: 2)
    public static let related = CtState(rawValue: 4)
    public static let new = CtState(rawValue: 8)
    public static let untracked = CtState(rawValue: 64)
}

public enum NATType: UInt32, Sendable, Hashable {
    case snat = 0, dnat = 1
}

/// NAT range flags (`NF_NAT_RANGE_*`).
public struct NATFlags: OptionSet, Sendable, Hashable {
    public var rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    public static let random = NATFlags(rawValue: 0x4)
    public static let persistent = NATFlags(rawValue: 0x8)
    public static let fullyRandom = NATFlags(rawValue: 0x10)
    /// MAP_IPS and PROTO_SPECIFIED: the kernel sets them itself when address or port registers are given.
    static let impliedByRegisters: UInt32 = 0x1 | 0x2
}

public enum NumgenType: UInt32, Sendable, Hashable {
    case incremental = 0, random = 1
}

/// How to reject (`NFT_REJECT_*` with its ICMP code).
public enum RejectKind: Sendable, Hashable {
    /// ICMP (ip family) with a code; 3 is port-unreachable, what `reject` means in an ip table.
    case icmp(code: UInt8)
    /// ICMPv6 (ip6 family) with a code; 4 is port-unreachable.
    case icmpv6(code: UInt8)
    /// Family-independent ICMP (inet family); 1 is port-unreachable.
    case icmpx(code: UInt8)
    case tcpReset

    /// What `reject` with no arguments does in a table of `family`.
    public static func portUnreachable(_ family: Family) -> RejectKind {
        switch family {
        case .ip: .icmp(code: 3)
        case .ip6: .icmpv6(code: 4)
        default: .icmpx(code: 1)
        }
    }
}

/// What a fib lookup keys on (`NFTA_FIB_F_*`).
public struct FibFlags: OptionSet, Sendable, Hashable {
    public var rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    public static let saddr = FibFlags(rawValue: 1)
    public static let daddr = FibFlags(rawValue: 2)
    public static let mark = FibFlags(rawValue: 4)
    public static let iif = FibFlags(rawValue: 8)
    public static let oif = FibFlags(rawValue: 16)
}

public enum FibResult: UInt32, Sendable, Hashable {
    case oif = 1, oifname = 2, addressType = 3
}

public enum DynsetOperation: UInt32, Sendable, Hashable {
    case add = 0, update = 1, delete = 2
}

/// A constant set or map that exists only for the rule that uses it: `{ 0 : goto a, 1 : goto b }`.
public struct AnonymousSet: Sendable, Hashable {
    public var keyType: [DataType]
    public var dataType: DataType?
    public var elements: [Element]

    public init(keyType: [DataType], dataType: DataType? = nil, elements: [Element]) {
        self.keyType = keyType
        self.dataType = dataType
        self.elements = elements
    }

    /// A set has no order: two anonymous sets are equal with the same elements in any order
    /// (the kernel dumps a hash set in its own order).
    public static func == (lhs: AnonymousSet, rhs: AnonymousSet) -> Bool {
        lhs.keyType == rhs.keyType && lhs.dataType == rhs.dataType && Set(lhs.elements) == Set(rhs.elements)
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(keyType)
        hasher.combine(dataType)
        hasher.combine(Set(elements))
    }
}

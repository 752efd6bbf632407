/// Builders for the matches and statements kube-proxy, the CNI plugin and the overlay write most.
/// Each returns the expressions `nft` would generate, so `nft list` prints them the usual way.
extension [Expression] {
    // MARK: Matches

    /// `ip saddr ADDRESS`
    public static func match(ipSaddr address: String) -> [Expression] {
        compare(.ipSaddr, .ipv4(address))
    }

    /// `ip daddr ADDRESS`
    public static func match(ipDaddr address: String) -> [Expression] {
        compare(.ipDaddr, .ipv4(address))
    }

    /// `ip6 saddr ADDRESS`
    public static func match(ip6Saddr address: String) -> [Expression] {
        compare(.ip6Saddr, .ipv6(address))
    }

    /// `ip6 daddr ADDRESS`
    public static func match(ip6Daddr address: String) -> [Expression] {
        compare(.ip6Daddr, .ipv6(address))
    }

    /// `meta l4proto PROTO`
    public static func match(l4proto: L4Proto) -> [Expression] { compare(.l4proto, .proto(l4proto)) }

    /// `th dport PORT` (`tcp dport` after an l4proto match)
    public static func match(thDport port: UInt16) -> [Expression] { compare(.thDport, .port(port)) }

    /// `th sport PORT`
    public static func match(thSport port: UInt16) -> [Expression] { compare(.thSport, .port(port)) }

    /// `meta iifname NAME`
    public static func match(iifname name: String) -> [Expression] { compare(.iifname, .ifname(name)) }

    /// `meta oifname NAME`
    public static func match(oifname name: String) -> [Expression] { compare(.oifname, .ifname(name)) }

    /// `meta nfproto ipv4` — needed before `ip …` matches in an inet table.
    public static func match(nfproto: Family) -> [Expression] {
        [.meta(.nfproto, dreg: .reg1), .cmp(.eq, sreg: .reg1, data: [nfproto.rawValue])]
    }

    /// `meta mark & MASK == VALUE` (with the default mask: `meta mark VALUE`).
    public static func match(mark: UInt32, mask: UInt32 = 0xffff_ffff) -> [Expression] {
        var load: [Expression] = [.meta(.mark, dreg: .reg1)]
        if mask != 0xffff_ffff {
            load.append(.bitwise(sreg: .reg1, dreg: .reg1, length: 4, mask: bytes(mask), xor: bytes(0)))
        }
        return load + [.cmp(.eq, sreg: .reg1, data: bytes(mark))]
    }

    /// `ct state new` (any of the given states).
    public static func match(ctState: CtState) -> [Expression] {
        [.ct(.state, dreg: .reg1),
         .bitwise(sreg: .reg1, dreg: .reg1, length: 4, mask: bytes(ctState.rawValue), xor: bytes(0)),
         .cmp(.neq, sreg: .reg1, data: bytes(0))]
    }

    /// `fib daddr type local`
    public static var matchLocalDestination: [Expression] {
        [.fib(.daddr, result: .addressType, dreg: .reg1), .cmp(.eq, sreg: .reg1, data: bytes(2))]
    }

    /// `ip saddr . th dport @SET` (any key fields; `!= @SET` when inverted).
    public static func match(_ key: [KeyField], inSet set: String, inverted: Bool = false) -> [Expression] {
        load(key) + [.lookup(set: set, sreg: .reg1, inverted: inverted)]
    }

    // MARK: Verdict maps

    /// `ip daddr . meta l4proto . th dport vmap @MAP`
    public static func vmap(_ key: [KeyField], map: String) -> [Expression] {
        load(key) + [.lookup(set: map, sreg: .reg1, dreg: .verdict)]
    }

    /// `numgen random mod N vmap { 0 : V0, 1 : V1, … }` — one verdict per endpoint, picked at random.
    public static func numgenVmap(_ verdicts: [Verdict]) -> [Expression] {
        let elements = verdicts.enumerated().map { StraitNFT.Element([.integer(UInt32($0.offset))], .verdict($0.element)) }
        return [.numgen(.random, modulus: UInt32(verdicts.count), dreg: .reg1),
                .lookupAnonymous(AnonymousSet(keyType: [.integer], dataType: .verdict, elements: elements),
                                 sreg: .reg1, dreg: .verdict)]
    }

    // MARK: Statements

    public static var counter: [Expression] { [.counter] }
    public static var accept: [Expression] { [.verdict(.accept)] }
    public static var drop: [Expression] { [.verdict(.drop)] }
    public static var `return`: [Expression] { [.verdict(.return)] }
    public static func jump(_ chain: String) -> [Expression] { [.verdict(.jump(chain))] }
    public static func goto(_ chain: String) -> [Expression] { [.verdict(.goto(chain))] }

    /// `reject` (`reject with tcp reset` and so on through `kind`).
    public static func reject(_ kind: RejectKind) -> [Expression] { [.reject(kind)] }

    /// `dnat to ADDRESS[:PORT]` in an ip or ip6 table.
    public static func dnat(to address: Datum, port: UInt16? = nil, family: Family = .ip) -> [Expression] {
        nat(.dnat, address, port, family)
    }

    /// `snat to ADDRESS[:PORT]` in an ip or ip6 table.
    public static func snat(to address: Datum, port: UInt16? = nil, family: Family = .ip) -> [Expression] {
        nat(.snat, address, port, family)
    }

    /// `masquerade` (`masquerade fully-random` with `.fullyRandom`).
    public static func masquerade(_ flags: NATFlags = []) -> [Expression] { [.masquerade(flags: flags)] }

    /// `meta mark set meta mark | BITS`
    public static func setMark(or bits: UInt32) -> [Expression] {
        [.meta(.mark, dreg: .reg1),
         .bitwise(sreg: .reg1, dreg: .reg1, length: 4, mask: bytes(~bits), xor: bytes(bits)),
         .metaSet(.mark, sreg: .reg1)]
    }

    /// `meta mark set meta mark ^ BITS` after `& ~BITS`: clears `bits`.
    public static func clearMark(_ bits: UInt32) -> [Expression] {
        [.meta(.mark, dreg: .reg1),
         .bitwise(sreg: .reg1, dreg: .reg1, length: 4, mask: bytes(~bits), xor: bytes(0)),
         .metaSet(.mark, sreg: .reg1)]
    }

    /// `update @SET { ip saddr }` (with a timeout: `{ ip saddr timeout 3h }`), for session affinity.
    public static func update(set: String, key: [KeyField], timeout: Duration? = nil) -> [Expression] {
        load(key) + [.dynset(set: set, operation: .update, sregKey: .reg1, timeout: timeout)]
    }

    // MARK: Parts

    /// Loads the fields of a (possibly concatenated) key into consecutive registers from `reg1`.
    public static func load(_ key: [KeyField]) -> [Expression] {
        var register = Register.reg1
        var expressions: [Expression] = []
        for field in key {
            expressions.append(field.load(into: register))
            register = register.advanced(byBytes: field.dataType.length)
        }
        return expressions
    }

    /// `ip daddr 10.244.1.0/24` (or `!=` when `negated`; any address field, IPv4 or IPv6): the field
    /// masked to the prefix, compared with the network address.
    public static func match(_ field: KeyField, inPrefix network: Datum, length: Int, negated: Bool = false) -> [Expression] {
        let data = (try? network.encoded()) ?? []
        let mask = (0..<data.count).map { index -> UInt8 in
            let bits = Swift.min(Swift.max(length - index * 8, 0), 8)
            return bits == 0 ? 0 : UInt8(truncatingIfNeeded: 0xff << (8 - bits))
        }
        let masked = zip(data, mask).map { $0 & $1 }
        return [field.load(into: .reg1),
                .bitwise(sreg: .reg1, dreg: .reg1, length: UInt32(data.count), mask: mask, xor: [UInt8](repeating: 0, count: data.count)),
                .cmp(negated ? .neq : .eq, sreg: .reg1, data: masked)]
    }

    static func compare(_ field: KeyField, _ value: Datum) -> [Expression] {
        // An invalid literal becomes bytes the kernel refuses (wrong length), so the commit names the rule.
        let data = (try? value.encoded()) ?? []
        return [field.load(into: .reg1), .cmp(.eq, sreg: .reg1, data: data)]
    }

    static func nat(_ type: NATType, _ address: Datum, _ port: UInt16?, _ family: Family) -> [Expression] {
        var expressions: [Expression] = [.immediate(dreg: .reg1, data: (try? address.encoded()) ?? [])]
        if let port { expressions.append(.immediate(dreg: .reg2, data: (try? Datum.port(port).encoded()) ?? [])) }
        expressions.append(.nat(type, family: family, addressMin: .reg1, portMin: port == nil ? nil : .reg2))
        return expressions
    }

    static func bytes(_ value: UInt32) -> [UInt8] { Swift.withUnsafeBytes(of: value) { [UInt8]($0) } }
}

/// A packet field that can be matched or be part of a set key.
public enum KeyField: Sendable, Hashable {
    case ipSaddr, ipDaddr, ip6Saddr, ip6Daddr, l4proto, thSport, thDport, mark, iifname, oifname

    /// The set key type this field fills.
    public var dataType: DataType {
        switch self {
        case .ipSaddr, .ipDaddr: .ipv4Addr
        case .ip6Saddr, .ip6Daddr: .ipv6Addr
        case .l4proto: .inetProto
        case .thSport, .thDport: .inetService
        case .mark: .mark
        case .iifname, .oifname: .ifname
        }
    }

    func load(into register: Register) -> Expression {
        switch self {
        case .ipSaddr: .payload(base: .network, offset: 12, length: 4, dreg: register)
        case .ipDaddr: .payload(base: .network, offset: 16, length: 4, dreg: register)
        case .ip6Saddr: .payload(base: .network, offset: 8, length: 16, dreg: register)
        case .ip6Daddr: .payload(base: .network, offset: 24, length: 16, dreg: register)
        case .l4proto: .meta(.l4proto, dreg: register)
        case .thSport: .payload(base: .transport, offset: 0, length: 2, dreg: register)
        case .thDport: .payload(base: .transport, offset: 2, length: 2, dreg: register)
        case .mark: .meta(.mark, dreg: register)
        case .iifname: .meta(.iifname, dreg: register)
        case .oifname: .meta(.oifname, dreg: register)
        }
    }
}

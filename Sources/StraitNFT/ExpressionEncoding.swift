import CNftables

#if canImport(Glibc)
import Glibc
#endif

/// `Expression` values to libnftnl expressions and back.
enum ExpressionEncoding {
    static func encode(_ expression: Expression, anonymousSetID: UInt32?) throws(NFTError) -> OpaquePointer {
        func make(_ name: String) -> OpaquePointer { nftnl_expr_alloc(name)! }
        func u32(_ e: OpaquePointer, _ attribute: Int, _ value: UInt32) {
            nftnl_expr_set_u32(e, UInt16(attribute), value)
        }
        func data(_ e: OpaquePointer, _ attribute: Int, _ bytes: [UInt8]) throws(NFTError) {
            guard !bytes.isEmpty, bytes.count <= 64 else { throw NFTError.invalid("constant of \(bytes.count) bytes") }
            _ = bytes.withUnsafeBytes { nftnl_expr_set(e, UInt16(attribute), $0.baseAddress, UInt32(bytes.count)) }
        }

        switch expression {
        case .payload(let base, let offset, let length, let dreg):
            let e = make("payload")
            u32(e, NFTNL_EXPR_PAYLOAD_DREG, dreg.rawValue)
            u32(e, NFTNL_EXPR_PAYLOAD_BASE, base.rawValue)
            u32(e, NFTNL_EXPR_PAYLOAD_OFFSET, offset)
            u32(e, NFTNL_EXPR_PAYLOAD_LEN, length)
            return e
        case .meta(let key, let dreg):
            let e = make("meta")
            u32(e, NFTNL_EXPR_META_KEY, key.rawValue)
            u32(e, NFTNL_EXPR_META_DREG, dreg.rawValue)
            return e
        case .metaSet(let key, let sreg):
            let e = make("meta")
            u32(e, NFTNL_EXPR_META_KEY, key.rawValue)
            u32(e, NFTNL_EXPR_META_SREG, sreg.rawValue)
            return e
        case .cmp(let op, let sreg, let bytes):
            let e = make("cmp")
            u32(e, NFTNL_EXPR_CMP_SREG, sreg.rawValue)
            u32(e, NFTNL_EXPR_CMP_OP, op.rawValue)
            try data(e, NFTNL_EXPR_CMP_DATA, bytes)
            return e
        case .bitwise(let sreg, let dreg, let length, let mask, let xor):
            let e = make("bitwise")
            u32(e, NFTNL_EXPR_BITWISE_SREG, sreg.rawValue)
            u32(e, NFTNL_EXPR_BITWISE_DREG, dreg.rawValue)
            u32(e, NFTNL_EXPR_BITWISE_LEN, length)
            try data(e, NFTNL_EXPR_BITWISE_MASK, mask)
            try data(e, NFTNL_EXPR_BITWISE_XOR, xor)
            return e
        case .lookup(let set, let sreg, let dreg, let inverted):
            let e = make("lookup")
            u32(e, NFTNL_EXPR_LOOKUP_SREG, sreg.rawValue)
            if let dreg { u32(e, NFTNL_EXPR_LOOKUP_DREG, dreg.rawValue) }
            nftnl_expr_set_str(e, UInt16(NFTNL_EXPR_LOOKUP_SET), set)
            if inverted { u32(e, NFTNL_EXPR_LOOKUP_FLAGS, NFT_LOOKUP_F_INV.rawValue) }
            return e
        case .lookupAnonymous(let anonymous, let sreg, let dreg):
            let e = make("lookup")
            u32(e, NFTNL_EXPR_LOOKUP_SREG, sreg.rawValue)
            if let dreg { u32(e, NFTNL_EXPR_LOOKUP_DREG, dreg.rawValue) }
            nftnl_expr_set_str(e, UInt16(NFTNL_EXPR_LOOKUP_SET), anonymous.dataType == nil ? "__set%d" : "__map%d")
            u32(e, NFTNL_EXPR_LOOKUP_SET_ID, anonymousSetID ?? 0)
            return e
        case .immediate(let dreg, let bytes):
            let e = make("immediate")
            u32(e, NFTNL_EXPR_IMM_DREG, dreg.rawValue)
            try data(e, NFTNL_EXPR_IMM_DATA, bytes)
            return e
        case .verdict(let verdict):
            let e = make("immediate")
            u32(e, NFTNL_EXPR_IMM_DREG, Register.verdict.rawValue)
            u32(e, NFTNL_EXPR_IMM_VERDICT, UInt32(bitPattern: verdict.code))
            if let chain = verdict.chain { nftnl_expr_set_str(e, UInt16(NFTNL_EXPR_IMM_CHAIN), chain) }
            return e
        case .ct(let key, let dreg):
            let e = make("ct")
            u32(e, NFTNL_EXPR_CT_KEY, key.rawValue)
            u32(e, NFTNL_EXPR_CT_DREG, dreg.rawValue)
            return e
        case .nat(let type, let family, let addressMin, let addressMax, let portMin, let portMax, let flags):
            let e = make("nat")
            u32(e, NFTNL_EXPR_NAT_TYPE, type.rawValue)
            u32(e, NFTNL_EXPR_NAT_FAMILY, UInt32(family.rawValue))
            if let addressMin { u32(e, NFTNL_EXPR_NAT_REG_ADDR_MIN, addressMin.rawValue) }
            if let addressMax { u32(e, NFTNL_EXPR_NAT_REG_ADDR_MAX, addressMax.rawValue) }
            if let portMin { u32(e, NFTNL_EXPR_NAT_REG_PROTO_MIN, portMin.rawValue) }
            if let portMax { u32(e, NFTNL_EXPR_NAT_REG_PROTO_MAX, portMax.rawValue) }
            if !flags.isEmpty { u32(e, NFTNL_EXPR_NAT_FLAGS, flags.rawValue) }
            return e
        case .masquerade(let flags, let portMin, let portMax):
            let e = make("masq")
            if !flags.isEmpty { u32(e, NFTNL_EXPR_MASQ_FLAGS, flags.rawValue) }
            if let portMin { u32(e, NFTNL_EXPR_MASQ_REG_PROTO_MIN, portMin.rawValue) }
            if let portMax { u32(e, NFTNL_EXPR_MASQ_REG_PROTO_MAX, portMax.rawValue) }
            return e
        case .numgen(let type, let modulus, let offset, let dreg):
            let e = make("numgen")
            u32(e, NFTNL_EXPR_NG_DREG, dreg.rawValue)
            u32(e, NFTNL_EXPR_NG_MODULUS, modulus)
            u32(e, NFTNL_EXPR_NG_TYPE, type.rawValue)
            u32(e, NFTNL_EXPR_NG_OFFSET, offset)
            return e
        case .counter:
            let e = make("counter")
            nftnl_expr_set_u64(e, UInt16(NFTNL_EXPR_CTR_PACKETS), 0)
            nftnl_expr_set_u64(e, UInt16(NFTNL_EXPR_CTR_BYTES), 0)
            return e
        case .reject(let kind):
            let e = make("reject")
            let (type, code): (UInt32, UInt8) = switch kind {
            case .icmp(let code), .icmpv6(let code): (NFT_REJECT_ICMP_UNREACH.rawValue, code)
            case .icmpx(let code): (NFT_REJECT_ICMPX_UNREACH.rawValue, code)
            case .tcpReset: (NFT_REJECT_TCP_RST.rawValue, 0)
            }
            u32(e, NFTNL_EXPR_REJECT_TYPE, type)
            nftnl_expr_set_u8(e, UInt16(NFTNL_EXPR_REJECT_CODE), code)
            return e
        case .fib(let flags, let result, let dreg):
            let e = make("fib")
            u32(e, NFTNL_EXPR_FIB_DREG, dreg.rawValue)
            u32(e, NFTNL_EXPR_FIB_RESULT, result.rawValue)
            u32(e, NFTNL_EXPR_FIB_FLAGS, flags.rawValue)
            return e
        case .dynset(let set, let operation, let sregKey, let sregData, let timeout):
            let e = make("dynset")
            u32(e, NFTNL_EXPR_DYNSET_SREG_KEY, sregKey.rawValue)
            if let sregData { u32(e, NFTNL_EXPR_DYNSET_SREG_DATA, sregData.rawValue) }
            u32(e, NFTNL_EXPR_DYNSET_OP, operation.rawValue)
            if let timeout { nftnl_expr_set_u64(e, UInt16(NFTNL_EXPR_DYNSET_TIMEOUT), timeout.milliseconds) }
            nftnl_expr_set_str(e, UInt16(NFTNL_EXPR_DYNSET_SET_NAME), set)
            return e
        case .log(let prefix):
            let e = make("log")
            if let prefix { nftnl_expr_set_str(e, UInt16(NFTNL_EXPR_LOG_PREFIX), prefix) }
            return e
        case .notrack:
            return make("notrack")
        }
    }

    /// Reads one libnftnl expression back; nil for kinds this module does not write.
    /// Anonymous set lookups come back through `anonymousSets` (the sets dumped with the table);
    /// `family` is the table's (an ICMP and an ICMPv6 reject are the same message).
    static func decode(_ e: OpaquePointer, anonymousSets: [String: AnonymousSet], family: Family) -> Expression? {
        func u32(_ attribute: Int) -> UInt32 { nftnl_expr_get_u32(e, UInt16(attribute)) }
        func has(_ attribute: Int) -> Bool { nftnl_expr_is_set(e, UInt16(attribute)) }
        func register(_ attribute: Int) -> Register? { has(attribute) ? Register(rawValue: u32(attribute)) : nil }
        func bytes(_ attribute: Int) -> [UInt8] {
            var length: UInt32 = 0
            guard let pointer = nftnl_expr_get(e, UInt16(attribute), &length) else { return [] }
            return Array(UnsafeRawBufferPointer(start: pointer, count: Int(length)))
        }
        func string(_ attribute: Int) -> String? {
            guard has(attribute), let text = nftnl_expr_get_str(e, UInt16(attribute)) else { return nil }
            return String(cString: text)
        }
        guard let namePointer = nftnl_expr_get_str(e, UInt16(NFTNL_EXPR_NAME)) else { return nil }
        switch String(cString: namePointer) {
        case "payload":
            guard let base = PayloadBase(rawValue: u32(NFTNL_EXPR_PAYLOAD_BASE)) else { return nil }
            return .payload(base: base, offset: u32(NFTNL_EXPR_PAYLOAD_OFFSET), length: u32(NFTNL_EXPR_PAYLOAD_LEN),
                            dreg: Register(rawValue: u32(NFTNL_EXPR_PAYLOAD_DREG)))
        case "meta":
            let key = MetaKey(rawValue: u32(NFTNL_EXPR_META_KEY))
            if let sreg = register(NFTNL_EXPR_META_SREG) { return .metaSet(key, sreg: sreg) }
            return .meta(key, dreg: Register(rawValue: u32(NFTNL_EXPR_META_DREG)))
        case "cmp":
            guard let op = CmpOp(rawValue: u32(NFTNL_EXPR_CMP_OP)) else { return nil }
            return .cmp(op, sreg: Register(rawValue: u32(NFTNL_EXPR_CMP_SREG)), data: bytes(NFTNL_EXPR_CMP_DATA))
        case "bitwise":
            return .bitwise(sreg: Register(rawValue: u32(NFTNL_EXPR_BITWISE_SREG)),
                            dreg: Register(rawValue: u32(NFTNL_EXPR_BITWISE_DREG)),
                            length: u32(NFTNL_EXPR_BITWISE_LEN), mask: bytes(NFTNL_EXPR_BITWISE_MASK),
                            xor: bytes(NFTNL_EXPR_BITWISE_XOR))
        case "lookup":
            let set = string(NFTNL_EXPR_LOOKUP_SET) ?? ""
            let sreg = Register(rawValue: u32(NFTNL_EXPR_LOOKUP_SREG))
            let dreg = register(NFTNL_EXPR_LOOKUP_DREG)
            if let anonymous = anonymousSets[set] { return .lookupAnonymous(anonymous, sreg: sreg, dreg: dreg) }
            let inverted = has(NFTNL_EXPR_LOOKUP_FLAGS) && u32(NFTNL_EXPR_LOOKUP_FLAGS) & 1 != 0
            return .lookup(set: set, sreg: sreg, dreg: dreg, inverted: inverted)
        case "immediate":
            let dreg = Register(rawValue: u32(NFTNL_EXPR_IMM_DREG))
            if dreg == .verdict {
                let code = Int32(bitPattern: u32(NFTNL_EXPR_IMM_VERDICT))
                return Verdict(code: code, chain: string(NFTNL_EXPR_IMM_CHAIN)).map { .verdict($0) }
            }
            return .immediate(dreg: dreg, data: bytes(NFTNL_EXPR_IMM_DATA))
        case "ct":
            return .ct(CtKey(rawValue: u32(NFTNL_EXPR_CT_KEY)), dreg: Register(rawValue: u32(NFTNL_EXPR_CT_DREG)))
        case "nat":
            guard let type = NATType(rawValue: u32(NFTNL_EXPR_NAT_TYPE)),
                  let family = Family(rawValue: UInt8(truncatingIfNeeded: u32(NFTNL_EXPR_NAT_FAMILY))) else { return nil }
            // The kernel reports a missing maximum as equal to the minimum; read it back as absent.
            let addressMin = register(NFTNL_EXPR_NAT_REG_ADDR_MIN), portMin = register(NFTNL_EXPR_NAT_REG_PROTO_MIN)
            let addressMax = register(NFTNL_EXPR_NAT_REG_ADDR_MAX), portMax = register(NFTNL_EXPR_NAT_REG_PROTO_MAX)
            return .nat(type, family: family, addressMin: addressMin,
                        addressMax: addressMax == addressMin ? nil : addressMax,
                        portMin: portMin, portMax: portMax == portMin ? nil : portMax,
                        flags: NATFlags(rawValue: (has(NFTNL_EXPR_NAT_FLAGS) ? u32(NFTNL_EXPR_NAT_FLAGS) : 0)
                                                   & ~NATFlags.impliedByRegisters))
        case "masq":
            return .masquerade(flags: NATFlags(rawValue: (has(NFTNL_EXPR_MASQ_FLAGS) ? u32(NFTNL_EXPR_MASQ_FLAGS) : 0)
                                                   & ~NATFlags.impliedByRegisters),
                               portMin: register(NFTNL_EXPR_MASQ_REG_PROTO_MIN),
                               portMax: register(NFTNL_EXPR_MASQ_REG_PROTO_MAX) == register(NFTNL_EXPR_MASQ_REG_PROTO_MIN)
                                   ? nil : register(NFTNL_EXPR_MASQ_REG_PROTO_MAX))
        case "numgen":
            guard let type = NumgenType(rawValue: u32(NFTNL_EXPR_NG_TYPE)) else { return nil }
            return .numgen(type, modulus: u32(NFTNL_EXPR_NG_MODULUS), offset: u32(NFTNL_EXPR_NG_OFFSET),
                           dreg: Register(rawValue: u32(NFTNL_EXPR_NG_DREG)))
        case "counter":
            return .counter
        case "reject":
            let code = nftnl_expr_get_u8(e, UInt16(NFTNL_EXPR_REJECT_CODE))
            switch u32(NFTNL_EXPR_REJECT_TYPE) {
            case NFT_REJECT_TCP_RST.rawValue: return .reject(.tcpReset)
            case NFT_REJECT_ICMPX_UNREACH.rawValue: return .reject(.icmpx(code: code))
            default: return .reject(family == .ip6 ? .icmpv6(code: code) : .icmp(code: code))
            }
        case "fib":
            guard let result = FibResult(rawValue: u32(NFTNL_EXPR_FIB_RESULT)) else { return nil }
            return .fib(FibFlags(rawValue: u32(NFTNL_EXPR_FIB_FLAGS)), result: result,
                        dreg: Register(rawValue: u32(NFTNL_EXPR_FIB_DREG)))
        case "dynset":
            guard let operation = DynsetOperation(rawValue: u32(NFTNL_EXPR_DYNSET_OP)) else { return nil }
            let timeout = has(NFTNL_EXPR_DYNSET_TIMEOUT)
                ? Duration.milliseconds(Int64(nftnl_expr_get_u64(e, UInt16(NFTNL_EXPR_DYNSET_TIMEOUT)))) : nil
            return .dynset(set: string(NFTNL_EXPR_DYNSET_SET_NAME) ?? "", operation: operation,
                           sregKey: Register(rawValue: u32(NFTNL_EXPR_DYNSET_SREG_KEY)),
                           sregData: register(NFTNL_EXPR_DYNSET_SREG_DATA), timeout: timeout)
        case "log":
            return .log(prefix: string(NFTNL_EXPR_LOG_PREFIX))
        case "notrack":
            return .notrack
        default:
            return nil
        }
    }
}

import CNftables

#if canImport(Glibc)
import Glibc
#endif

/// Turns a transaction's changes into nfnetlink messages (through libnftnl objects) in one batch.
struct BatchEncoder {
    let buffer: BatchBuffer
    /// Ids for anonymous sets, unique within the batch, so the rule's lookup can find its set.
    private var nextSetID: UInt32 = 1

    init(buffer: BatchBuffer) { self.buffer = buffer }

    mutating func encode(_ transaction: Transaction) throws(NFTError) {
        buffer.append(nil) { buf, seq in _ = nftnl_batch_begin(buf, seq) }
        for change in transaction.changes { try encode(change) }
        buffer.append(nil) { buf, seq in _ = nftnl_batch_end(buf, seq) }
    }

    private mutating func encode(_ change: Transaction.Change) throws(NFTError) {
        let create = UInt16(NLM_F_CREATE), excl = UInt16(NLM_F_EXCL)
        switch change {
        case .add(let object), .create(let object):
            let exclusive: UInt16 = if case .create = change { excl } else { 0 }
            switch object {
            case .table(let table): emitTable(NFT_MSG_NEWTABLE, table, "add \(table)", create | exclusive)
            case .chain(let chain):
                emitChain(NFT_MSG_NEWCHAIN, chain, "add chain \(chain.name) to \(chain.table)", create | exclusive)
            case .set(let set):
                let operation = "add \(set.isMap ? "map" : "set") \(set.name) to \(set.table)"
                try emitSet(set, id: nil, operation, create | exclusive)
            case .elements(let set, let elements):
                try emitElements(NFT_MSG_NEWSETELEM, set, id: nil, elements,
                                 "add \(elements.count) elements to \(set)", create)
            case .rule(let rule):
                try emitRule(rule, "add rule to chain \(rule.chain) in \(rule.table)",
                             create | UInt16(NLM_F_APPEND), handle: nil)
            }
        case .insert(let rule):
            try emitRule(rule, "insert rule into chain \(rule.chain) in \(rule.table)", create, handle: nil)
        case .replace(let handle, let rule):
            try emitRule(rule, "replace rule \(handle) in chain \(rule.chain) in \(rule.table)",
                         UInt16(NLM_F_REPLACE), handle: handle)
        case .flush(let object):
            switch object {
            case .table(let table): emitRuleFlush(table, chain: nil, "flush \(table)")
            case .chain(let chain): emitRuleFlush(chain.table, chain: chain.name, "flush \(chain)")
            case .set(let set):
                try emitElements(NFT_MSG_DELSETELEM, SetReference(set), id: nil, [], "flush \(set)", 0)
            case .elements, .rule: break
            }
        case .delete(let object):
            switch object {
            case .table(let table): emitTable(NFT_MSG_DELTABLE, table, "delete \(table)", 0)
            case .chain(let chain): emitChain(NFT_MSG_DELCHAIN, chain, "delete \(chain)", 0)
            case .set(let set):
                emitSetDelete(set)
            case .elements(let set, let elements):
                try emitElements(NFT_MSG_DELSETELEM, set, id: nil, elements,
                                 "delete \(elements.count) elements from \(set)", 0)
            case .rule(let rule):
                throw NFTError(operation: "delete \(rule)", errno: EINVAL, detail: "rules are deleted by handle")
            }
        case .deleteRule(let handle, let chain):
            let rule = nftnl_rule_alloc()!
            defer { nftnl_rule_free(rule) }
            nftnl_rule_set_u32(rule, UInt16(NFTNL_RULE_FAMILY), UInt32(chain.table.family.rawValue))
            nftnl_rule_set_str(rule, UInt16(NFTNL_RULE_TABLE), chain.table.name)
            nftnl_rule_set_str(rule, UInt16(NFTNL_RULE_CHAIN), chain.name)
            nftnl_rule_set_u64(rule, UInt16(NFTNL_RULE_HANDLE), handle)
            message(NFT_MSG_DELRULE, chain.table.family, 0, "delete rule \(handle) in \(chain)") {
                nftnl_rule_nlmsg_build_payload($0, rule)
            }
        }
    }

    // MARK: Messages

    /// One acknowledged message: header (with NLM_F_ACK) and payload.
    private func message(_ type: nf_tables_msg_types, _ family: Family, _ flags: UInt16, _ operation: String,
                         _ payload: (UnsafeMutablePointer<nlmsghdr>) -> Void) {
        buffer.append(operation) { buf, seq in
            let header = nftnl_nlmsg_build_hdr(buf, UInt16(type.rawValue), UInt16(family.rawValue),
                                               flags | UInt16(NLM_F_ACK), seq)!
            payload(header)
        }
    }

    private func emitTable(_ type: nf_tables_msg_types, _ table: Table, _ operation: String, _ flags: UInt16) {
        let object = nftnl_table_alloc()!
        defer { nftnl_table_free(object) }
        nftnl_table_set_u32(object, UInt16(NFTNL_TABLE_FAMILY), UInt32(table.family.rawValue))
        nftnl_table_set_str(object, UInt16(NFTNL_TABLE_NAME), table.name)
        if type == NFT_MSG_NEWTABLE, let comment = table.comment {
            UserData.comment(comment, type: UInt8(NFTNL_UDATA_TABLE_COMMENT.rawValue)) { data, length in
                nftnl_table_set_data(object, UInt16(NFTNL_TABLE_USERDATA), data, length)
            }
        }
        message(type, table.family, flags, operation) { nftnl_table_nlmsg_build_payload($0, object) }
    }

    private func emitChain(_ type: nf_tables_msg_types, _ chain: Chain, _ operation: String, _ flags: UInt16) {
        let object = nftnl_chain_alloc()!
        defer { nftnl_chain_free(object) }
        nftnl_chain_set_u32(object, UInt16(NFTNL_CHAIN_FAMILY), UInt32(chain.table.family.rawValue))
        nftnl_chain_set_str(object, UInt16(NFTNL_CHAIN_TABLE), chain.table.name)
        nftnl_chain_set_str(object, UInt16(NFTNL_CHAIN_NAME), chain.name)
        if type == NFT_MSG_NEWCHAIN {
            if let base = chain.base {
                let hook = chain.table.family == .netdev && base.hook == .ingress ? 0 : base.hook.rawValue
                nftnl_chain_set_u32(object, UInt16(NFTNL_CHAIN_HOOKNUM), hook)
                nftnl_chain_set_s32(object, UInt16(NFTNL_CHAIN_PRIO), base.priority)
                nftnl_chain_set_str(object, UInt16(NFTNL_CHAIN_TYPE), base.type.rawValue)
                nftnl_chain_set_u32(object, UInt16(NFTNL_CHAIN_POLICY), base.policy.rawValue)
                if let device = base.device { nftnl_chain_set_str(object, UInt16(NFTNL_CHAIN_DEV), device) }
            }
            if let comment = chain.comment {
                UserData.comment(comment, type: UInt8(NFTNL_UDATA_CHAIN_COMMENT.rawValue)) { data, length in
                    nftnl_chain_set_data(object, UInt16(NFTNL_CHAIN_USERDATA), data, length)
                }
            }
        }
        message(type, chain.table.family, flags, operation) { nftnl_chain_nlmsg_build_payload($0, object) }
    }

    /// Flushes rules: of one chain, or (without `chain`) of every chain in the table.
    private func emitRuleFlush(_ table: Table, chain: String?, _ operation: String) {
        let rule = nftnl_rule_alloc()!
        defer { nftnl_rule_free(rule) }
        nftnl_rule_set_u32(rule, UInt16(NFTNL_RULE_FAMILY), UInt32(table.family.rawValue))
        nftnl_rule_set_str(rule, UInt16(NFTNL_RULE_TABLE), table.name)
        if let chain { nftnl_rule_set_str(rule, UInt16(NFTNL_RULE_CHAIN), chain) }
        message(NFT_MSG_DELRULE, table.family, 0, operation) { nftnl_rule_nlmsg_build_payload($0, rule) }
    }

    private func setObject(table: Table, name: String, id: UInt32?) -> OpaquePointer {
        let object = nftnl_set_alloc()!
        nftnl_set_set_u32(object, UInt16(NFTNL_SET_FAMILY), UInt32(table.family.rawValue))
        nftnl_set_set_str(object, UInt16(NFTNL_SET_TABLE), table.name)
        nftnl_set_set_str(object, UInt16(NFTNL_SET_NAME), name)
        if let id { nftnl_set_set_u32(object, UInt16(NFTNL_SET_ID), id) }
        return object
    }

    private func emitSetDelete(_ set: NFTSet) {
        let object = setObject(table: set.table, name: set.name, id: nil)
        defer { nftnl_set_free(object) }
        message(NFT_MSG_DELSET, set.table.family, 0, "delete \(set)") { nftnl_set_nlmsg_build_payload($0, object) }
    }

    /// NEWSET for a named set, or for an anonymous one (`id` given, name with `%d` for the kernel to fill).
    /// A batch-unique set id (nft sends one with every new set).
    private mutating func takeSetID() -> UInt32 {
        defer { nextSetID += 1 }
        return nextSetID
    }

    private mutating func emitSet(_ set: NFTSet, id: UInt32?, _ operation: String, _ flags: UInt16,
                         extraFlags: UInt32 = 0) throws(NFTError) {
        guard !set.keyType.isEmpty, !set.keyType.contains(.verdict) else {
            throw NFTError(operation: operation, errno: EINVAL, detail: "invalid key type")
        }
        let object = setObject(table: set.table, name: set.name, id: id ?? takeSetID())
        defer { nftnl_set_free(object) }
        var kernelFlags = set.flags.rawValue | extraFlags
        if set.isMap { kernelFlags |= SetFlags.map }
        if set.keyType.count > 1 && set.flags.contains(.interval) { kernelFlags |= SetFlags.concat }
        nftnl_set_set_u32(object, UInt16(NFTNL_SET_FLAGS), kernelFlags)
        nftnl_set_set_u32(object, UInt16(NFTNL_SET_KEY_TYPE), set.keyType.kernelTypeID)
        nftnl_set_set_u32(object, UInt16(NFTNL_SET_KEY_LEN), UInt32(set.keyType.kernelLength))
        if kernelFlags & SetFlags.concat != 0 {
            // Field lengths let the kernel pick the pipapo backend for concatenated intervals
            // (and it refuses them without NFT_SET_CONCAT).
            var lengths = set.keyType.map { UInt8($0.length) }
            nftnl_set_set_data(object, UInt16(NFTNL_SET_DESC_CONCAT), &lengths, UInt32(lengths.count))
        }
        if set.dataType == .verdict {
            // nft sends a zero data length for verdicts, and the kernel wants the attribute present.
            nftnl_set_set_u32(object, UInt16(NFTNL_SET_DATA_TYPE), NFT_DATA_VERDICT.rawValue)
            nftnl_set_set_u32(object, UInt16(NFTNL_SET_DATA_LEN), 0)
        } else if set.isMap {
            nftnl_set_set_u32(object, UInt16(NFTNL_SET_DATA_TYPE), set.valueType.kernelTypeID)
            nftnl_set_set_u32(object, UInt16(NFTNL_SET_DATA_LEN), UInt32(set.valueType.kernelLength))
        }
        if let timeout = set.timeout { nftnl_set_set_u64(object, UInt16(NFTNL_SET_TIMEOUT), timeout.milliseconds) }
        UserData.setDescription(set) { data, length in
            nftnl_set_set_data(object, UInt16(NFTNL_SET_USERDATA), data, length)
        }
        message(NFT_MSG_NEWSET, set.table.family, flags, operation) { nftnl_set_nlmsg_build_payload($0, object) }
    }

    /// Set element messages, written straight into the batch (no libnftnl object, no byte array
    /// per element: a full sync writes 100,000 of them): as many messages as it takes, each under
    /// the kernel's 64 KiB limit on the element list. A list that is empty flushes the set (DELSETELEM).
    private func emitElements(_ type: nf_tables_msg_types, _ set: SetReference, id: UInt32?,
                              _ elements: [Element], _ operation: String, _ flags: UInt16) throws(NFTError) {
        var next = 0
        repeat {
            var failure: NFTError?
            buffer.append(operation, room: Self.elementMessageRoom) { buf, _, sequence in
                let header = nftnl_nlmsg_build_hdr(buf, UInt16(type.rawValue), UInt16(set.table.family.rawValue),
                                                   flags | UInt16(NLM_F_ACK), sequence)!
                mnl_attr_put_strz(header, UInt16(NFTA_SET_ELEM_LIST_SET), set.name)
                if let id { mnl_attr_put_u32(header, UInt16(NFTA_SET_ELEM_LIST_SET_ID), id.bigEndian) }
                mnl_attr_put_strz(header, UInt16(NFTA_SET_ELEM_LIST_TABLE), set.table.name)
                guard next < elements.count else { return }
                let list = mnl_attr_nest_start(header, UInt16(NFTA_SET_ELEM_LIST_ELEMENTS))
                var written = 0
                // The elements are read in place, not copied one by one.
                elements.withUnsafeBufferPointer { elements in
                    while next < elements.count {
                        let end = Int(header.pointee.nlmsg_len) + ElementWriter.bound(elements[next])
                        guard written == 0 || end <= Self.elementMessageLimit else { break }
                        // The writer does not check bounds: an element no message can hold is refused here.
                        guard end <= Self.elementMessageRoom else {
                            failure = NFTError(operation: operation, errno: EMSGSIZE,
                                               detail: "element too large for a message: \(elements[next])")
                            return
                        }
                        do throws(NFTError) {
                            try ElementWriter(header: header).write(elements[next])
                        } catch {
                            failure = NFTError(operation: operation, errno: EINVAL,
                                               detail: "\(error.detail ?? "") in \(elements[next])")
                            return
                        }
                        next += 1
                        written += 1
                    }
                }
                mnl_attr_nest_end(header, list)
            }
            if let failure { throw failure }
        } while next < elements.count
    }

    /// Where a set element message stops taking elements: the element list's length is 16 bits.
    static let elementMessageLimit = 48 * 1024
    /// The room an element message is given: its limit, and one more element of the largest kind.
    static let elementMessageRoom = 64 * 1024

    private mutating func emitRule(_ rule: Rule, _ operation: String, _ flags: UInt16,
                                   handle: UInt64?) throws(NFTError) {
        let object = nftnl_rule_alloc()!
        defer { nftnl_rule_free(object) }
        nftnl_rule_set_u32(object, UInt16(NFTNL_RULE_FAMILY), UInt32(rule.table.family.rawValue))
        nftnl_rule_set_str(object, UInt16(NFTNL_RULE_TABLE), rule.table.name)
        nftnl_rule_set_str(object, UInt16(NFTNL_RULE_CHAIN), rule.chain)
        if let handle { nftnl_rule_set_u64(object, UInt16(NFTNL_RULE_HANDLE), handle) }
        if let comment = rule.comment {
            UserData.comment(comment, type: UInt8(NFTNL_UDATA_RULE_COMMENT.rawValue)) { data, length in
                nftnl_rule_set_data(object, UInt16(NFTNL_RULE_USERDATA), data, length)
            }
        }
        for expression in rule.expressions {
            let anonymousID: UInt32?
            if case .lookupAnonymous(let anonymous, _, _) = expression {
                // The anonymous set goes first in the batch; the lookup finds it by id.
                let id = takeSetID()
                let set = NFTSet(table: rule.table, name: anonymous.dataType == nil ? "__set%d" : "__map%d",
                                 keyType: anonymous.keyType, dataType: anonymous.dataType, flags: .constant)
                try emitSet(set, id: id, operation, UInt16(NLM_F_CREATE), extraFlags: SetFlags.anonymous)
                try emitElements(NFT_MSG_NEWSETELEM, SetReference(set), id: id, anonymous.elements, operation,
                                 UInt16(NLM_F_CREATE))
                anonymousID = id
            } else {
                anonymousID = nil
            }
            let encoded: OpaquePointer
            do {
                encoded = try ExpressionEncoding.encode(expression, anonymousSetID: anonymousID)
            } catch {
                throw NFTError(operation: operation, errno: EINVAL, detail: error.detail)
            }
            nftnl_rule_add_expr(object, encoded)
        }
        message(NFT_MSG_NEWRULE, rule.table.family, flags, operation) { nftnl_rule_nlmsg_build_payload($0, object) }
    }
}

extension Duration {
    @usableFromInline
    var milliseconds: UInt64 {
        let (seconds, attoseconds) = components
        return UInt64(max(0, seconds)) * 1000 + UInt64(max(0, attoseconds) / 1_000_000_000_000_000)
    }
}

/// nft's user data TLVs (comments, byte orders), which `nft list` reads to print objects as written.
enum UserData {
    static func comment(_ text: String, type: UInt8, _ apply: (UnsafeRawPointer, UInt32) -> Void) {
        build(apply) { nftnl_udata_put_strz($0, type, text) }
    }

    static func setDescription(_ set: NFTSet, _ apply: (UnsafeRawPointer, UInt32) -> Void) {
        build(apply) { buffer in
            // nft's BYTEORDER_HOST_ENDIAN is 1, BYTEORDER_BIG_ENDIAN is 2.
            let keyOrder: UInt32 = set.keyType.count == 1 && set.keyType[0].isHostOrder ? 1 : 2
            nftnl_udata_put_u32(buffer, UInt8(NFTNL_UDATA_SET_KEYBYTEORDER.rawValue), keyOrder)
            if set.isMap, set.dataType != .verdict {
                nftnl_udata_put_u32(buffer, UInt8(NFTNL_UDATA_SET_DATABYTEORDER.rawValue),
                                    set.valueType.count == 1 && set.valueType[0].isHostOrder ? 1 : 2)
            }
            if let typeof = set.typeof {
                put(buffer, UInt8(NFTNL_UDATA_SET_KEY_TYPEOF.rawValue), typeof.key.userData)
                if let value = typeof.value {
                    put(buffer, UInt8(NFTNL_UDATA_SET_DATA_TYPEOF.rawValue), value.userData)
                }
            }
            if let comment = set.comment {
                nftnl_udata_put_strz(buffer, UInt8(NFTNL_UDATA_SET_COMMENT.rawValue), comment)
            }
        }
    }

    private static func put(_ buffer: OpaquePointer, _ type: UInt8, _ value: [UInt8]) {
        _ = value.withUnsafeBytes { nftnl_udata_put(buffer, type, UInt32($0.count), $0.baseAddress) }
    }

    private static func build(_ apply: (UnsafeRawPointer, UInt32) -> Void,
                              _ fill: (OpaquePointer) -> Void) {
        guard let buffer = nftnl_udata_buf_alloc(UInt32(NFTNL_UDATA_COMMENT_MAXLEN) * 2 + 64) else { return }
        defer { nftnl_udata_buf_free(buffer) }
        fill(buffer)
        apply(nftnl_udata_buf_data(buffer), nftnl_udata_buf_len(buffer))
    }

    /// Reads TLVs (type byte, length byte, value) back into a map of type to value bytes.
    static func parse(_ data: UnsafeRawPointer?, _ length: UInt32) -> [UInt8: [UInt8]] {
        guard let data, length > 0 else { return [:] }
        let bytes = UnsafeRawBufferPointer(start: data, count: Int(length))
        var result: [UInt8: [UInt8]] = [:]
        var offset = 0
        while offset + 2 <= bytes.count {
            let type = bytes[offset], size = Int(bytes[offset + 1])
            guard offset + 2 + size <= bytes.count else { break }
            result[type] = Array(bytes[(offset + 2)..<(offset + 2 + size)])
            offset += 2 + size
        }
        return result
    }

    static func string(_ value: [UInt8]?) -> String? {
        value.map { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
    }
}

extension UInt16 {
    /// libnftnl's named attribute enums (`NFTNL_RULE_TABLE`, …) import as raw-value structs.
    init<Attribute: RawRepresentable>(_ attribute: Attribute) where Attribute.RawValue: BinaryInteger {
        self.init(truncatingIfNeeded: attribute.rawValue)
    }
}

import CNftables

#if canImport(Glibc)
import Glibc
#endif

/// A table as the kernel holds it, read back as values to compare with what was committed.
public struct TableContents: Sendable, Hashable {
    public var table: Table
    /// In the kernel's order (creation order).
    public var chains: [Chain]
    /// Named sets and maps (anonymous ones appear inside the rules that own them).
    public var sets: [NFTSet]
    /// Elements of each named set, by set name.
    public var elements: [String: [Element]]
    /// Rules of each chain in order, by chain name.
    public var rules: [String: [ListedRule]]

    public func chain(_ name: String) -> Chain? { chains.first { $0.name == name } }
    public func set(_ name: String) -> NFTSet? { sets.first { $0.name == name } }
    /// The rules of `chain` without their handles, to compare with committed `Rule`s.
    public func rules(in chain: String) -> [Rule] { (rules[chain] ?? []).map(\.rule) }
}

/// NFT_MSG_GET* dumps parsed with libnftnl into values.
struct TableDump {
    let socket: Socket

    func tables(_ family: Family?) throws(NFTError) -> [Table] {
        var tables: [Table] = []
        try dump(NFT_MSG_GETTABLE, family, "list tables") { header in
            let object = nftnl_table_alloc()!
            defer { nftnl_table_free(object) }
            guard nftnl_table_nlmsg_parse(header, object) >= 0,
                  let family = Family(rawValue: UInt8(truncatingIfNeeded: nftnl_table_get_u32(object, UInt16(NFTNL_TABLE_FAMILY)))),
                  let name = nftnl_table_get_str(object, UInt16(NFTNL_TABLE_NAME)) else { return }
            var length: UInt32 = 0
            let userData = nftnl_table_get_data(object, UInt16(NFTNL_TABLE_USERDATA), &length)
            let comment = UserData.string(UserData.parse(userData, length)[UInt8(NFTNL_UDATA_TABLE_COMMENT.rawValue)])
            tables.append(Table(family, String(cString: name), comment: comment))
        }
        return tables
    }

    func list(_ wanted: Table) throws(NFTError) -> TableContents? {
        guard let table = try tables(wanted.family).first(where: { $0.name == wanted.name }) else { return nil }
        let chains = try chains(of: table)
        let (named, anonymous) = try sets(of: table)
        var elements: [String: [Element]] = [:]
        for set in named { elements[set.name] = try self.elements(of: set) }
        var anonymousSets: [String: AnonymousSet] = [:]
        for set in anonymous {
            anonymousSets[set.name] = AnonymousSet(keyType: set.keyType, dataType: set.dataType,
                                                   elements: try self.elements(of: set))
        }
        let rules = try self.rules(of: table, anonymousSets: anonymousSets)
        return TableContents(table: table, chains: chains, sets: named, elements: elements, rules: rules)
    }

    private func chains(of table: Table) throws(NFTError) -> [Chain] {
        var chains: [Chain] = []
        try dump(NFT_MSG_GETCHAIN, table.family, "list chains of \(table)") { header in
            let object = nftnl_chain_alloc()!
            defer { nftnl_chain_free(object) }
            guard nftnl_chain_nlmsg_parse(header, object) >= 0,
                  string(nftnl_chain_get_str(object, UInt16(NFTNL_CHAIN_TABLE))) == table.name,
                  let name = string(nftnl_chain_get_str(object, UInt16(NFTNL_CHAIN_NAME))) else { return }
            var base: BaseChain?
            if nftnl_chain_is_set(object, UInt16(NFTNL_CHAIN_HOOKNUM)) {
                let hookNumber = nftnl_chain_get_u32(object, UInt16(NFTNL_CHAIN_HOOKNUM))
                let hook = table.family == .netdev ? .ingress : Hook(rawValue: hookNumber) ?? .prerouting
                base = BaseChain(
                    type: ChainType(rawValue: string(nftnl_chain_get_str(object, UInt16(NFTNL_CHAIN_TYPE))) ?? "")
                        ?? .filter,
                    hook: hook,
                    priority: nftnl_chain_get_s32(object, UInt16(NFTNL_CHAIN_PRIO)),
                    policy: Policy(rawValue: nftnl_chain_get_u32(object, UInt16(NFTNL_CHAIN_POLICY))) ?? .accept,
                    device: nftnl_chain_is_set(object, UInt16(NFTNL_CHAIN_DEV))
                        ? string(nftnl_chain_get_str(object, UInt16(NFTNL_CHAIN_DEV))) : nil)
            }
            var length: UInt32 = 0
            let userData = nftnl_chain_get_data(object, UInt16(NFTNL_CHAIN_USERDATA), &length)
            let comment = UserData.string(UserData.parse(userData, length)[UInt8(NFTNL_UDATA_CHAIN_COMMENT.rawValue)])
            chains.append(Chain(table: table, name: name, base: base, comment: comment))
        }
        return chains
    }

    private func sets(of table: Table) throws(NFTError) -> (named: [NFTSet], anonymous: [NFTSet]) {
        var named: [NFTSet] = [], anonymous: [NFTSet] = []
        try dump(NFT_MSG_GETSET, table.family, "list sets of \(table)") { header in
            let object = nftnl_set_alloc()!
            defer { nftnl_set_free(object) }
            guard nftnl_set_nlmsg_parse(header, object) >= 0,
                  string(nftnl_set_get_str(object, UInt16(NFTNL_SET_TABLE))) == table.name,
                  let name = string(nftnl_set_get_str(object, UInt16(NFTNL_SET_NAME))) else { return }
            let flags = nftnl_set_get_u32(object, UInt16(NFTNL_SET_FLAGS))
            let keyType = [DataType](kernelTypeID: nftnl_set_get_u32(object, UInt16(NFTNL_SET_KEY_TYPE))) ?? [.integer]
            var valueType: [DataType] = []
            if flags & SetFlags.map != 0 {
                let raw = nftnl_set_get_u32(object, UInt16(NFTNL_SET_DATA_TYPE))
                valueType = raw == NFT_DATA_VERDICT.rawValue ? [.verdict] : [DataType](kernelTypeID: raw) ?? [.integer]
            }
            let timeout = nftnl_set_is_set(object, UInt16(NFTNL_SET_TIMEOUT))
                ? Duration.milliseconds(Int64(nftnl_set_get_u64(object, UInt16(NFTNL_SET_TIMEOUT)))) : nil
            var length: UInt32 = 0
            let userData = nftnl_set_get_data(object, UInt16(NFTNL_SET_USERDATA), &length)
            let tlvs = UserData.parse(userData, length)
            let comment = UserData.string(tlvs[UInt8(NFTNL_UDATA_SET_COMMENT.rawValue)])
            let typeof = tlvs[UInt8(NFTNL_UDATA_SET_KEY_TYPEOF.rawValue)].flatMap { key in
                SetTypeof(userData: key, value: tlvs[UInt8(NFTNL_UDATA_SET_DATA_TYPEOF.rawValue)])
            }
            let set = NFTSet(table: table, name: name, keyType: keyType, valueType: valueType,
                             flags: SetFlags(rawValue: flags & SetFlags.userVisible), timeout: timeout,
                             comment: comment, typeof: typeof)
            if flags & SetFlags.anonymous != 0 { anonymous.append(set) } else { named.append(set) }
        }
        return (named, anonymous)
    }

    /// A hash set's dump can repeat elements while the kernel resizes its table after a big insert;
    /// such a dump is retried until it comes back without repeats.
    private func elements(of set: NFTSet) throws(NFTError) -> [Element] {
        var elements: [Element] = []
        for attempt in 0..<20 {
            elements = try dumpElements(of: set)
            if Set(elements).count == elements.count { return elements }
            usleep(UInt32(20_000 * (attempt + 1)))
        }
        var seen = Set<Element>()
        return elements.filter { seen.insert($0).inserted }
    }

    private func dumpElements(of set: NFTSet) throws(NFTError) -> [Element] {
        let object = nftnl_set_alloc()!
        defer { nftnl_set_free(object) }
        nftnl_set_set_u32(object, UInt16(NFTNL_SET_FAMILY), UInt32(set.table.family.rawValue))
        nftnl_set_set_str(object, UInt16(NFTNL_SET_TABLE), set.table.name)
        nftnl_set_set_str(object, UInt16(NFTNL_SET_NAME), set.name)
        try dump(NFT_MSG_GETSETELEM, set.table.family, "list elements of \(set)",
                 request: { nftnl_set_elems_nlmsg_build_payload($0, object) },
                 each: { header in _ = nftnl_set_elems_nlmsg_parse(header, object) })
        var elements: [Element] = []
        let iterator = nftnl_set_elems_iter_create(object)!
        defer { nftnl_set_elems_iter_destroy(iterator) }
        while let item = nftnl_set_elems_iter_next(iterator) {
            var length: UInt32 = 0
            guard let key = nftnl_set_elem_get(item, UInt16(NFTNL_SET_ELEM_KEY), &length) else { continue }
            var element = Element(Element.Fields(decoding: UnsafeRawBufferPointer(start: key, count: Int(length)),
                                                 as: set.keyType))
            if nftnl_set_elem_is_set(item, UInt16(NFTNL_SET_ELEM_VERDICT)) {
                let code = Int32(bitPattern: nftnl_set_elem_get_u32(item, UInt16(NFTNL_SET_ELEM_VERDICT)))
                let chain = nftnl_set_elem_is_set(item, UInt16(NFTNL_SET_ELEM_CHAIN))
                    ? string(nftnl_set_elem_get_str(item, UInt16(NFTNL_SET_ELEM_CHAIN))) : nil
                element.value = Verdict(code: code, chain: chain).map { .verdict($0) }
            } else if let data = nftnl_set_elem_get(item, UInt16(NFTNL_SET_ELEM_DATA), &length), set.isMap {
                let bytes = UnsafeRawBufferPointer(start: data, count: Int(length))
                element.value = .data(Element.Fields(decoding: bytes, as: set.valueType))
            }
            if nftnl_set_elem_is_set(item, UInt16(NFTNL_SET_ELEM_TIMEOUT)) {
                let timeout = Duration.milliseconds(Int64(nftnl_set_elem_get_u64(item, UInt16(NFTNL_SET_ELEM_TIMEOUT))))
                if timeout != set.timeout { element.timeout = timeout }
            }
            elements.append(element)
        }
        return elements
    }

    private func rules(of table: Table, anonymousSets: [String: AnonymousSet]) throws(NFTError) -> [String: [ListedRule]] {
        var rules: [String: [ListedRule]] = [:]
        try dump(NFT_MSG_GETRULE, table.family, "list rules of \(table)") { header in
            let object = nftnl_rule_alloc()!
            defer { nftnl_rule_free(object) }
            guard nftnl_rule_nlmsg_parse(header, object) >= 0,
                  string(nftnl_rule_get_str(object, UInt16(NFTNL_RULE_TABLE))) == table.name,
                  let chain = string(nftnl_rule_get_str(object, UInt16(NFTNL_RULE_CHAIN))) else { return }
            var expressions: [Expression] = []
            let iterator = nftnl_expr_iter_create(object)!
            defer { nftnl_expr_iter_destroy(iterator) }
            while let item = nftnl_expr_iter_next(iterator) {
                if let expression = ExpressionEncoding.decode(item, anonymousSets: anonymousSets,
                                                              family: table.family) {
                    expressions.append(expression)
                }
            }
            var length: UInt32 = 0
            let userData = nftnl_rule_get_data(object, UInt16(NFTNL_RULE_USERDATA), &length)
            let comment = UserData.string(UserData.parse(userData, length)[UInt8(NFTNL_UDATA_RULE_COMMENT.rawValue)])
            let rule = Rule(table: table, chain: chain, expressions: expressions, comment: comment)
            rules[chain, default: []].append(
                ListedRule(handle: nftnl_rule_get_u64(object, UInt16(NFTNL_RULE_HANDLE)), rule: rule))
        }
        return rules
    }

    private func string(_ pointer: UnsafePointer<CChar>?) -> String? { pointer.map { String(cString: $0) } }

    /// Sends one dump request and hands every reply message to `each` until the kernel says done.
    private func dump(_ type: nf_tables_msg_types, _ family: Family?, _ operation: String,
                      request: (UnsafeMutablePointer<nlmsghdr>) -> Void = { _ in },
                      each: (UnsafePointer<nlmsghdr>) -> Void) throws(NFTError) {
        var storage = [UInt8](repeating: 0, count: 1 << 17)
        let sequence = UInt32(truncatingIfNeeded: time(nil))
        let size: Int = storage.withUnsafeMutableBytes { raw in
            let header = nftnl_nlmsg_build_hdr(raw.baseAddress!.assumingMemoryBound(to: CChar.self),
                                               UInt16(type.rawValue), UInt16(family?.rawValue ?? 0),
                                               UInt16(NLM_F_DUMP), sequence)!
            request(header)
            return Int(header.pointee.nlmsg_len)
        }
        let handle = socket.handle
        try netlink(operation) { storage.withUnsafeBytes { mnl_socket_sendto(handle, $0.baseAddress, size) } }
        while true {
            let received = try netlink(operation) {
                storage.withUnsafeMutableBytes { mnl_socket_recvfrom(handle, $0.baseAddress, $0.count) }
            }
            var done = false
            var failure: Int32 = 0
            storage.withUnsafeBytes { raw in
                var offset = 0
                while offset + 16 <= received {
                    let header = (raw.baseAddress! + offset).assumingMemoryBound(to: nlmsghdr.self)
                    let length = Int(header.pointee.nlmsg_len)
                    guard length >= 16, offset + length <= received else { break }
                    if header.pointee.nlmsg_seq == sequence {
                        switch Int32(header.pointee.nlmsg_type) {
                        case NLMSG_DONE: done = true
                        case NLMSG_ERROR:
                            let code = (raw.baseAddress! + offset + 16).loadUnaligned(as: Int32.self)
                            if code != 0 { failure = -code }
                            done = true
                        default: each(header)
                        }
                    }
                    offset += (length + 3) & ~3
                }
            }
            if failure != 0 { throw NFTError(operation: operation, errno: failure) }
            if done { return }
        }
    }
}

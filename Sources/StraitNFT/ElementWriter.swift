import CNftables

/// Writes one set element's attributes at the end of a netlink message: the list item nest with
/// its key, its value (data or verdict) and its timeout, as the kernel reads them
/// (`nft_add_set_elem`). Used instead of a libnftnl object per element, which would allocate and
/// copy each one twice before it reached the batch.
struct ElementWriter {
    let header: UnsafeMutablePointer<nlmsghdr>

    /// Bytes `write` may take for `element`, at most.
    static func bound(_ element: Element) -> Int {
        var bytes = 64 + element.key.encodedKeyLength
        switch element.value {
        case .data(let data): bytes += data.encodedKeyLength
        case .verdict(let verdict): bytes += verdict.chain.map { $0.utf8.count } ?? 0
        case nil: break
        }
        return bytes
    }

    func write(_ element: Element) throws(NFTError) {
        let item = mnl_attr_nest_start(header, UInt16(NFTA_LIST_ELEM))
        let key = mnl_attr_nest_start(header, UInt16(NFTA_SET_ELEM_KEY))
        try putValue(length: element.key.encodedKeyLength) { (bytes) throws(NFTError) in
            try element.key.writeKey(to: bytes)
        }
        mnl_attr_nest_end(header, key)
        switch element.value {
        case .verdict(let verdict):
            let data = mnl_attr_nest_start(header, UInt16(NFTA_SET_ELEM_DATA))
            let nested = mnl_attr_nest_start(header, UInt16(NFTA_DATA_VERDICT))
            mnl_attr_put_u32(header, UInt16(NFTA_VERDICT_CODE), UInt32(bitPattern: verdict.code).bigEndian)
            if let chain = verdict.chain { mnl_attr_put_strz(header, UInt16(NFTA_VERDICT_CHAIN), chain) }
            mnl_attr_nest_end(header, nested)
            mnl_attr_nest_end(header, data)
        case .data(let value):
            let data = mnl_attr_nest_start(header, UInt16(NFTA_SET_ELEM_DATA))
            try putValue(length: value.encodedKeyLength) { (bytes) throws(NFTError) in try value.writeKey(to: bytes) }
            mnl_attr_nest_end(header, data)
        case nil: break
        }
        if let timeout = element.timeout {
            mnl_attr_put_u64(header, UInt16(NFTA_SET_ELEM_TIMEOUT), timeout.milliseconds.bigEndian)
        }
        mnl_attr_nest_end(header, item)
    }

    /// An `NFTA_DATA_VALUE` attribute of `length` bytes that `fill` writes in place, padding zeroed
    /// (as `mnl_attr_put` would write a copy).
    private func putValue(length: Int,
                          _ fill: (UnsafeMutableRawPointer) throws(NFTError) -> Void) throws(NFTError) {
        // The message's aligned end, where the next attribute goes (`mnl_nlmsg_get_payload_tail`).
        let attribute = UnsafeMutableRawPointer(header) + ((Int(header.pointee.nlmsg_len) + 3) & ~3)
        let total = 4 + length, padded = (total + 3) & ~3
        attribute.storeBytes(of: UInt16(total), as: UInt16.self)
        attribute.storeBytes(of: UInt16(NFTA_DATA_VALUE), toByteOffset: 2, as: UInt16.self)
        if padded > total { (attribute + total).initializeMemory(as: UInt8.self, repeating: 0, count: padded - total) }
        try fill(attribute + 4)
        header.pointee.nlmsg_len += UInt32(padded)
    }
}

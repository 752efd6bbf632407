extension Element {
    /// The fields of a set element's key or a map element's value (`10.96.0.1 . tcp . 80 . 3`), a
    /// collection of `Datum`s held as the kernel's bytes in place: each field at a 4-byte boundary in
    /// the order the kernel compares it, the padding zeroed. A full sync builds, hashes, compares and
    /// encodes hundreds of thousands of keys and values; held inline they cost no heap array each,
    /// compare as four words and encode as one copy. Fields that do not fit (`PackedFields`) —
    /// arbitrary bytes, text that is no address (kept to be refused by name when encoded), an
    /// interface name the kernel cannot hold, more than six fields or 28 bytes — are held as a list
    /// of `Datum`s. Which form a list of values takes depends on the values alone, so two equal lists
    /// are held alike and compare equal.
    public struct Fields: Sendable, Hashable, RandomAccessCollection, ExpressibleByArrayLiteral,
        CustomStringConvertible {
        @usableFromInline
        enum Storage: Sendable, Hashable {
            case packed(PackedFields)
            case list([Datum])
        }

        @usableFromInline let storage: Storage

        public init(_ fields: some Collection<Datum>) {
            var packed = PackedFields()
            for field in fields {
                guard packed.append(field) else {
                    storage = .list(Array(fields))
                    return
                }
            }
            storage = .packed(packed)
        }

        public init(arrayLiteral fields: Datum...) { self.init(fields) }

        // Fixed arities, for the keys a sync builds by the hundred thousand: no array to pass them in, and
        // inlined where they are built (the fields' kinds are then known there).
        @inlinable public init(_ a: Datum) { self.init(packing: a, nil, nil, nil) }
        @inlinable public init(_ a: Datum, _ b: Datum) { self.init(packing: a, b, nil, nil) }
        @inlinable public init(_ a: Datum, _ b: Datum, _ c: Datum) { self.init(packing: a, b, c, nil) }
        @inlinable public init(_ a: Datum, _ b: Datum, _ c: Datum, _ d: Datum) { self.init(packing: a, b, c, d) }

        @inlinable
        init(packing a: Datum, _ b: Datum?, _ c: Datum?, _ d: Datum?) {
            var packed = PackedFields()
            if packed.append(a), b.map({ packed.append($0) }) ?? true, c.map({ packed.append($0) }) ?? true,
               d.map({ packed.append($0) }) ?? true {
                storage = .packed(packed)
            } else {
                storage = .list([a] + [b, c, d].compactMap { $0 })
            }
        }

        /// These fields and `datum` after them: a key's prefix built once, completed for each of its elements.
        @inlinable
        public func appending(_ datum: Datum) -> Fields {
            if case .packed(var packed) = storage, packed.append(datum) { return Fields(storage: .packed(packed)) }
            return Fields(Array(self) + [datum])
        }

        @usableFromInline
        init(storage: Storage) { self.storage = storage }

        /// Splits the kernel's bytes of a key or value into fields of `types`.
        init(decoding bytes: UnsafeRawBufferPointer, as types: [DataType]) {
            var packed = PackedFields()
            var fitted = true
            [Datum].forEachField(of: bytes, as: types) { field in
                if fitted { fitted = packed.append(field) }
            }
            storage = fitted ? .packed(packed) : .list([Datum](decoding: bytes, as: types))
        }

        init(decoding bytes: [UInt8], as types: [DataType]) {
            self = bytes.withUnsafeBytes { Fields(decoding: $0, as: types) }
        }

        public var startIndex: Int { 0 }

        public var endIndex: Int {
            switch storage {
            case .packed(let packed): packed.count
            case .list(let list): list.count
            }
        }

        public subscript(position: Int) -> Datum {
            switch storage {
            case .packed(let packed): packed[position]
            case .list(let list): list[position]
            }
        }

        /// Whether the fields are held in place (for tests: the form is otherwise invisible).
        var isPacked: Bool {
            if case .packed = storage { true } else { false }
        }

        public var description: String { map(\.description).joined(separator: " . ") }

        /// The length of the key or value: one field as is, a concatenation with every field padded to 4 bytes.
        var encodedKeyLength: Int {
            switch storage {
            case .packed(let packed): packed.encodedLength
            case .list(let list): list.encodedKeyLength
            }
        }

        /// Writes the bytes (`encodedKeyLength` of them) at `destination`, padding zeroed.
        func writeKey(to destination: UnsafeMutableRawPointer) throws(NFTError) {
            switch storage {
            case .packed(let packed): packed.write(to: destination)
            case .list(let list): try list.writeKey(to: destination)
            }
        }

        /// The bytes: one field as is, a concatenation with every field padded to 4 bytes.
        func encodedKey() throws(NFTError) -> [UInt8] {
            switch storage {
            case .packed(let packed):
                [UInt8](unsafeUninitializedCapacity: packed.encodedLength) { buffer, count in
                    if let base = buffer.baseAddress { packed.write(to: base) }
                    count = packed.encodedLength
                }
            case .list(let list): try list.encodedKey()
            }
        }
    }
}

/// Up to six fields in 28 bytes, laid out as the kernel reads a concatenation (see `Element.Fields`): the
/// IPv6 slot key `address . proto . port . slot` takes all 28. The whole is 32 bytes, and the enums that
/// hold it (`Element.Fields`, `ElementValue`, an optional one) put their tags in the spare bits of its
/// last byte, a `Bool`: an element is 72 bytes, where one more byte of fields would make it 88.
@usableFromInline
struct PackedFields: Sendable, Hashable {
    /// What a field is, four bits each in `kinds`; zero ends the fields.
    @usableFromInline
    enum Kind: UInt32 {
        case ipv4 = 1, ipv6, proto, port, mark, integer, ifname

        /// The bytes the kernel compares.
        @inlinable
        var length: Int {
            switch self {
            case .ipv4, .mark, .integer: 4
            case .ipv6, .ifname: 16
            case .proto: 1
            case .port: 2
            }
        }

        @inlinable
        var padded: Int { (length + 3) & ~3 }
    }

    @usableFromInline static let capacity = 28, maxFields = 6

    @usableFromInline var words: (UInt64, UInt64, UInt64, UInt32) = (0, 0, 0, 0)
    /// Field i's `Kind` in bits 4i..<4i+4 of the three bytes, low byte first.
    @usableFromInline var kinds: (UInt8, UInt8, UInt8) = (0, 0, 0)
    /// Whether there is exactly one field, which the kernel takes unpadded.
    @usableFromInline var isSingle = false

    @inlinable init() {}

    @inlinable var kindBits: UInt32 { UInt32(kinds.0) | UInt32(kinds.1) << 8 | UInt32(kinds.2) << 16 }

    @inlinable var count: Int { (32 - kindBits.leadingZeroBitCount + 3) / 4 }

    @inlinable func kind(_ index: Int) -> Kind { Kind(rawValue: (kindBits >> (4 * UInt32(index))) & 0xf)! }

    /// The bytes the fields take, each padded to 4.
    @inlinable var used: Int {
        var bits = kindBits, length = 0
        while bits != 0 {
            length += Kind(rawValue: bits & 0xf)!.padded
            bits >>= 4
        }
        return length
    }

    /// One field as is, a concatenation padded.
    var encodedLength: Int { isSingle ? kind(0).length : used }

    /// Adds `datum` after the last field; false (and nothing changed) when it cannot be held in place.
    @inlinable
    mutating func append(_ datum: Datum) -> Bool {
        let index = count, offset = used
        guard index < Self.maxFields else { return false }
        let kind: Kind
        switch datum.value {
        case .ipv4: kind = .ipv4
        case .ipv6: kind = .ipv6
        case .proto: kind = .proto
        case .port: kind = .port
        case .mark: kind = .mark
        case .integer: kind = .integer
        case .ifname(let name):
            // The kernel's IFNAMSIZ is 16 with the terminating zero; a name read back ends at its first zero.
            guard name.utf8.count < 16, !name.utf8.contains(0) else { return false }
            kind = .ifname
        case .bytes, .invalidAddress: return false
        }
        guard offset + kind.padded <= Self.capacity else { return false }
        withUnsafeMutableBytes(of: &words) { raw in
            switch datum.value {
            case .ipv4(let address): raw.storeBytes(of: address, toByteOffset: offset, as: UInt32.self)
            case .ipv6(let high, let low):
                raw.storeBytes(of: high, toByteOffset: offset, as: UInt64.self)
                raw.storeBytes(of: low, toByteOffset: offset + 8, as: UInt64.self)
            case .proto(let proto): raw[offset] = proto.rawValue
            case .port(let port): raw.storeBytes(of: port.bigEndian, toByteOffset: offset, as: UInt16.self)
            case .mark(let value), .integer(let value):
                raw.storeBytes(of: value, toByteOffset: offset, as: UInt32.self)
            case .ifname(let name):
                var at = offset
                for byte in name.utf8 {
                    raw[at] = byte
                    at += 1
                }
            case .bytes, .invalidAddress: break
            }
        }
        let bits = kindBits | kind.rawValue << (4 * UInt32(index))
        kinds = (UInt8(truncatingIfNeeded: bits), UInt8(truncatingIfNeeded: bits >> 8),
                 UInt8(truncatingIfNeeded: bits >> 16))
        isSingle = index == 0
        return true
    }

    subscript(index: Int) -> Datum {
        precondition(index >= 0 && index < count, "field index out of range")
        var offset = 0
        for earlier in 0..<index { offset += kind(earlier).padded }
        let kind = kind(index)
        return withUnsafeBytes(of: words) { raw in
            switch kind {
            case .ipv4: Datum(.ipv4(raw.loadUnaligned(fromByteOffset: offset, as: UInt32.self)))
            case .ipv6: Datum(.ipv6(raw.loadUnaligned(fromByteOffset: offset, as: UInt64.self),
                                    raw.loadUnaligned(fromByteOffset: offset + 8, as: UInt64.self)))
            case .proto: Datum(.proto(L4Proto(rawValue: raw[offset])))
            case .port: Datum(.port(UInt16(bigEndian: raw.loadUnaligned(fromByteOffset: offset, as: UInt16.self))))
            case .mark: Datum(.mark(raw.loadUnaligned(fromByteOffset: offset, as: UInt32.self)))
            case .integer: Datum(.integer(raw.loadUnaligned(fromByteOffset: offset, as: UInt32.self)))
            case .ifname:
                Datum(.ifname(String(decoding: UnsafeRawBufferPointer(rebasing: raw[offset..<offset + 16])
                    .prefix { $0 != 0 }, as: UTF8.self)))
            }
        }
    }

    /// Writes `encodedLength` bytes at `destination`.
    func write(to destination: UnsafeMutableRawPointer) {
        withUnsafeBytes(of: words) { destination.copyMemory(from: $0.baseAddress!, byteCount: encodedLength) }
    }

    @usableFromInline
    static func == (a: PackedFields, b: PackedFields) -> Bool {
        a.kindBits == b.kindBits && a.words.0 == b.words.0 && a.words.1 == b.words.1 && a.words.2 == b.words.2
            && a.words.3 == b.words.3
    }

    @usableFromInline
    func hash(into hasher: inout Hasher) {
        hasher.combine(kindBits)
        hasher.combine(words.0)
        hasher.combine(words.1)
        hasher.combine(words.2)
        hasher.combine(words.3)
    }
}

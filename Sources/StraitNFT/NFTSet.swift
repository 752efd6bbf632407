/// A named set, or a map when it has a `dataType` (a verdict map when that is `.verdict`).
/// Keys may be concatenations: `[.ipv4Addr, .inetProto, .inetService]`.
/// Equivalent: `nft add map ip strait service-ips { type ipv4_addr . inet_proto . inet_service : verdict; }`.
public struct NFTSet: Sendable, Hashable, CustomStringConvertible {
    public var table: Table
    public var name: String
    public var keyType: [DataType]
    /// A map's value: one type, or a concatenation (`ipv4_addr . inet_service`); empty for a set.
    public var valueType: [DataType]
    public var flags: SetFlags
    /// Default lifetime of elements (needs `.timeout` in `flags`).
    public var timeout: Duration?
    public var comment: String?
    /// The expressions `nft` shows the key and value as (`typeof numgen random mod 2`), for types
    /// it cannot name on its own: an `integer` key prints and re-parses only with them.
    public var typeof: SetTypeof?

    public init(table: Table, name: String, keyType: [DataType], dataType: DataType? = nil,
                flags: SetFlags = [], timeout: Duration? = nil, comment: String? = nil) {
        self.init(table: table, name: name, keyType: keyType, valueType: dataType.map { [$0] } ?? [],
                  flags: flags, timeout: timeout, comment: comment)
    }

    public init(table: Table, name: String, keyType: [DataType], valueType: [DataType],
                flags: SetFlags = [], timeout: Duration? = nil, comment: String? = nil, typeof: SetTypeof? = nil) {
        self.table = table.identity
        self.name = name
        self.keyType = keyType
        self.valueType = valueType
        self.flags = flags
        self.timeout = timeout
        self.comment = comment
        self.typeof = typeof
    }

    public var isMap: Bool { !valueType.isEmpty }
    /// The value's type when it is a single field (`.verdict` for a verdict map).
    public var dataType: DataType? { valueType.count == 1 ? valueType[0] : nil }

    public var description: String { "\(isMap ? "map" : "set") \(name) in \(table)" }
}

/// Set flags as `nft` writes them (`flags interval,timeout`). The raw value is the kernel's `NFT_SET_*`.
public struct SetFlags: OptionSet, Sendable, Hashable {
    public var rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    public static let constant = SetFlags(rawValue: 0x2)
    public static let interval = SetFlags(rawValue: 0x4)
    public static let timeout = SetFlags(rawValue: 0x10)
    /// Updated from the packet path (`update @set { … }`); nft calls it `dynamic`.
    public static let dynamic = SetFlags(rawValue: 0x20)

    static let anonymous: UInt32 = 0x1
    static let map: UInt32 = 0x8
    static let concat: UInt32 = 0x80
    static let userVisible: UInt32 = 0x2 | 0x4 | 0x10 | 0x20
}

/// One element of a set or map: a key (one field per key type), and for a map its value.
/// Equivalent: `10.0.0.1 . tcp . 80 : goto svc-x`.
public struct Element: Sendable, Hashable, CustomStringConvertible {
    public var key: Fields
    /// The value and the timeout in one enum of 32 bytes (the tags in `Fields`' spare bits), so that an
    /// element is 64 bytes: a full sync holds 100,000 of them. An element with a timeout (rare: the
    /// packet path fills such sets) keeps both in a box.
    @usableFromInline var stored: Stored

    @usableFromInline
    enum Stored: Sendable, Hashable {
        case none
        case verdict(Verdict)
        case data(Fields)
        /// The timeout in the kernel's unit, milliseconds.
        indirect case timed(ElementValue?, milliseconds: UInt64)

        /// The one form of a value and timeout, so that equal elements are held alike.
        @inlinable
        init(_ value: ElementValue?, milliseconds: UInt64?) {
            if let milliseconds {
                self = .timed(value, milliseconds: milliseconds)
                return
            }
            switch value {
            case nil: self = .none
            case .verdict(let verdict)?: self = .verdict(verdict)
            case .data(let data)?: self = .data(data)
            }
        }
    }

    public var value: ElementValue? {
        get {
            switch stored {
            case .none: nil
            case .verdict(let verdict): .verdict(verdict)
            case .data(let data): .data(data)
            case .timed(let value, _): value
            }
        }
        set { stored = Stored(newValue, milliseconds: timeoutMilliseconds) }
    }

    private var timeoutMilliseconds: UInt64? {
        if case .timed(_, let milliseconds) = stored { milliseconds } else { nil }
    }

    /// Lifetime of this element (the set needs `.timeout`), in whole milliseconds as the kernel keeps it.
    public var timeout: Duration? {
        get { timeoutMilliseconds.map { .milliseconds(Int64(clamping: $0)) } }
        set { stored = Stored(value, milliseconds: newValue?.milliseconds) }
    }

    @inlinable
    public init(_ key: Fields, _ value: ElementValue? = nil, timeout: Duration? = nil) {
        self.key = key
        stored = Stored(value, milliseconds: timeout?.milliseconds)
    }

    public init(_ key: [Datum], _ value: ElementValue? = nil, timeout: Duration? = nil) {
        self.init(Fields(key), value, timeout: timeout)
    }

    public init(_ key: Datum..., verdict: Verdict) {
        self.init(Fields(key), .verdict(verdict))
    }

    public var description: String { value.map { "\(key) : \($0)" } ?? key.description }
}

/// The value a map element maps its key to.
public enum ElementValue: Sendable, Hashable, CustomStringConvertible {
    case verdict(Verdict)
    case data(Element.Fields)

    public var description: String {
        switch self {
        case .verdict(let verdict): verdict.description
        case .data(let data): data.description
        }
    }
}

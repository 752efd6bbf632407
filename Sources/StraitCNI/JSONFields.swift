/// A member of a JSON document strait-cni reads that is missing, null or of the wrong type, named
/// by its path as the plugin has always printed it: `runtimeConfig.portMappings.[0].hostPort`.
public struct JSONFieldError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Problem: Sendable, Equatable {
        case missing
        case null
        case wrongType(expected: String, found: String)
    }

    public let path: String
    public let problem: Problem

    public var description: String {
        switch problem {
        case .missing: "no \(path)"
        case .null: "\(path) is null"
        case .wrongType(let expected, let found): "\(path): expected \(expected), found \(found)"
        }
    }
}

/// The members of one JSON object, read by type. Optional members treat null as absent, as
/// `decodeIfPresent` did; `path` names the object in errors.
struct JSONFields {
    let members: [String: JSONValue]
    let path: String

    init(_ value: JSONValue, path: String = "") throws(JSONFieldError) {
        guard case .object(let members) = value else {
            throw JSONFieldError(path: path, problem: .wrongType(expected: "an object", found: value.kind))
        }
        self.members = members
        self.path = path
    }

    func path(of key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }

    /// A member that must be present and not null.
    func required(_ key: String) throws(JSONFieldError) -> JSONValue {
        guard let value = members[key] else { throw JSONFieldError(path: path(of: key), problem: .missing) }
        if case .null = value { throw JSONFieldError(path: path(of: key), problem: .null) }
        return value
    }

    /// A member that may be absent or null (both nil).
    func optional(_ key: String) -> JSONValue? {
        guard let value = members[key] else { return nil }
        if case .null = value { return nil }
        return value
    }

    func string(_ key: String) throws(JSONFieldError) -> String {
        try Self.string(try required(key), path: path(of: key))
    }

    func optionalString(_ key: String) throws(JSONFieldError) -> String? {
        guard let value = optional(key) else { return nil }
        return try Self.string(value, path: path(of: key))
    }

    func int(_ key: String) throws(JSONFieldError) -> Int {
        try Self.int(try required(key), path: path(of: key))
    }

    func optionalInt(_ key: String) throws(JSONFieldError) -> Int? {
        guard let value = optional(key) else { return nil }
        return try Self.int(value, path: path(of: key))
    }

    func optionalBool(_ key: String) throws(JSONFieldError) -> Bool? {
        guard let value = optional(key) else { return nil }
        guard case .bool(let flag) = value else { throw Self.wrongType(value, "a boolean", path(of: key)) }
        return flag
    }

    func optionalObject(_ key: String) throws(JSONFieldError) -> JSONFields? {
        guard let value = optional(key) else { return nil }
        return try JSONFields(value, path: path(of: key))
    }

    /// An array member's elements, each with its path (`key.[0]`).
    func optionalArray(_ key: String) throws(JSONFieldError) -> [(value: JSONValue, path: String)]? {
        guard let value = optional(key) else { return nil }
        guard case .array(let elements) = value else { throw Self.wrongType(value, "an array", path(of: key)) }
        return elements.enumerated().map { (value: $0.element, path: "\(path(of: key)).[\($0.offset)]") }
    }

    func optionalStrings(_ key: String) throws(JSONFieldError) -> [String]? {
        guard let elements = try optionalArray(key) else { return nil }
        var strings: [String] = []
        for element in elements { strings.append(try Self.string(element.value, path: element.path)) }
        return strings
    }

    static func string(_ value: JSONValue, path: String) throws(JSONFieldError) -> String {
        guard case .string(let text) = value else { throw wrongType(value, "a string", path) }
        return text
    }

    /// A whole number; JSON numbers are read as doubles, exact up to 2^53.
    static func int(_ value: JSONValue, path: String) throws(JSONFieldError) -> Int {
        guard case .number(let number) = value, number.rounded() == number, abs(number) <= 9_007_199_254_740_992 else {
            throw wrongType(value, "a whole number", path)
        }
        return Int(number)
    }

    static func wrongType(_ value: JSONValue, _ expected: String, _ path: String) -> JSONFieldError {
        var found = value.kind
        if case .number(let number) = value { found = "the number \(number)" }
        return JSONFieldError(path: path, problem: .wrongType(expected: expected, found: found))
    }
}

/// Building a JSON object member by member; nil values are left out, as `encodeIfPresent` did.
struct JSONObjectBuilder {
    private(set) var members: [String: JSONValue] = [:]

    mutating func set(_ key: String, _ value: JSONValue?) { if let value { members[key] = value } }
    mutating func set(_ key: String, _ text: String?) { if let text { members[key] = .string(text) } }
    mutating func set(_ key: String, _ number: Int?) { if let number { members[key] = .number(Double(number)) } }
    mutating func set(_ key: String, _ flag: Bool?) { if let flag { members[key] = .bool(flag) } }

    var value: JSONValue { .object(members) }
}

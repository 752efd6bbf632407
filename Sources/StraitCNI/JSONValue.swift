/// Any JSON value, kept as it came, so fields strait-cni does not interpret (`dns`, `prevResult`,
/// unknown keys) pass through unchanged as the spec requires.
///
/// strait-cni reads and writes its few JSON shapes through this type (`JSONReader`, `JSONWriter`,
/// `JSONFields`) instead of Foundation's `Codable` coders: the process lives for one request, and
/// the coders' generic machinery (type metadata built from mangled names, protocol conformance
/// scans over the whole static image) cost it more CPU than its kernel work.
public enum JSONValue: Sendable, Hashable {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    public subscript(key: String) -> JSONValue? {
        if case .object(let object) = self { return object[key] }
        return nil
    }

    public var stringValue: String? {
        if case .string(let value) = self { return value }
        return nil
    }

    /// What the value is, for errors: "a string", "an array", …
    var kind: String {
        switch self {
        case .null: "null"
        case .bool: "a boolean"
        case .number: "a number"
        case .string: "a string"
        case .array: "an array"
        case .object: "an object"
        }
    }

    /// Parses one JSON document (RFC 8259); see `JSONReader`.
    public static func parse(_ bytes: [UInt8]) throws(JSONReader.SyntaxError) -> JSONValue {
        try JSONReader.parse(bytes)
    }
}

/// A Kubernetes object with a value Strait cannot use: names the object and the field.
/// `Service default/web: spec.ports[0].port: 70000 is not a valid port (1-65535)`
public struct ModelError: Error, Sendable, Hashable, CustomStringConvertible {
    /// `Service default/web`, `Node node-1`.
    public var object: String
    /// The field path as Kubernetes writes it: `spec.ports[0].port`.
    public var field: String
    public var problem: String

    public init(object: String, field: String, problem: String) {
        self.object = object
        self.field = field
        self.problem = problem
    }

    public var description: String { "\(object): \(field): \(problem)" }
}

/// Collects the problems of one object; the checks below are shared by every kind.
struct Validator {
    let object: String
    var errors: [ModelError] = []

    mutating func fail(_ field: String, _ problem: String) {
        errors.append(ModelError(object: object, field: field, problem: problem))
    }

    mutating func port(_ field: String, _ value: Int) {
        if !(1...65535).contains(value) { fail(field, "\(value) is not a valid port (1-65535)") }
    }

    mutating func known<E: OpenStringEnum>(_ field: String, _ value: E?, _ what: String) {
        if let value, !value.isKnown {
            fail(field, "\(String(reflecting: value.rawValue)) is not a supported \(what) (\(E.knownList))")
        }
    }

    mutating func ip(_ field: String, _ text: String, family: IPFamily? = nil) {
        do {
            let address = try IPAddress(parsing: text)
            if let family, address.family != family {
                fail(field, "\(String(reflecting: text)) is not an \(family.rawValue) address")
            }
        } catch {
            fail(field, "\(String(reflecting: text)) is not an IP address: \(error.reason)")
        }
    }

    mutating func cidr(_ field: String, _ text: String) {
        do {
            _ = try IPCIDR(parsing: text)
        } catch {
            fail(field, "\(String(reflecting: text)) is not a CIDR: \(error.reason)")
        }
    }

    enum NameRule {
        /// Service names: lowercase letters, digits and '-', starting with a letter, at most 63.
        case dns1035Label
        /// Port names: lowercase letters, digits and '-', starting and ending alphanumeric, at most 63.
        case dns1123Label
        /// Most object names: dot-separated DNS-1123 labels, at most 253.
        case dns1123Subdomain
    }

    /// An object or port name, checked as Kubernetes checks it.
    mutating func name(_ field: String, _ value: String, _ rule: NameRule) {
        if value.isEmpty { return fail(field, "is required") }
        let labels = rule == .dns1123Subdomain
            ? value.split(separator: ".", omittingEmptySubsequences: false) : [Substring(value)]
        let valid = value.utf8.count <= (rule == .dns1123Subdomain ? 253 : 63) && labels.allSatisfy { label in
            let bytes = Array(label.utf8)
            guard let first = bytes.first, let last = bytes.last, bytes.count <= 63 else { return false }
            let firstOK = rule == .dns1035Label ? Self.isLower(first) : Self.isLowerAlnum(first)
            return firstOK && Self.isLowerAlnum(last)
                && bytes.allSatisfy { Self.isLowerAlnum($0) || $0 == UInt8(ascii: "-") }
        }
        if !valid {
            let text = switch rule {
            case .dns1035Label: "a DNS-1035 label (lowercase letters, digits and '-', starting with a letter)"
            case .dns1123Label: "a DNS-1123 label (lowercase letters, digits and '-')"
            case .dns1123Subdomain: "a DNS-1123 subdomain (lowercase letters, digits, '-' and '.')"
            }
            fail(field, "\(String(reflecting: value)) is not \(text)")
        }
    }

    /// A namespace, as Kubernetes checks it (a DNS-1123 label); unset or empty means `default`.
    /// The proxy writes it into rule comments and the store into keys, so nothing else may pass.
    mutating func namespace(_ value: String?) {
        if let value, !value.isEmpty { name("metadata.namespace", value, .dns1123Label) }
    }

    /// IANA service name, as a named `targetPort` must be.
    mutating func portName(_ field: String, _ value: String) {
        let bytes = Array(value.utf8), hyphen = UInt8(ascii: "-")
        let valid = (1...15).contains(bytes.count)
            && bytes.allSatisfy { Self.isLowerAlnum($0) || $0 == hyphen }
            && bytes.contains(where: Self.isLower)
            && bytes.first != hyphen && bytes.last != hyphen
            && !zip(bytes, bytes.dropFirst()).contains { $0 == hyphen && $1 == hyphen }
        if !valid {
            fail(field, "\(String(reflecting: value)) is not a valid port name "
                + "(at most 15 lowercase letters, digits and '-', with a letter)")
        }
    }

    static func isLower(_ byte: UInt8) -> Bool { (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) }
    static func isLowerAlnum(_ byte: UInt8) -> Bool {
        isLower(byte) || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
    }
}

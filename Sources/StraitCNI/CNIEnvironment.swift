/// The commands a runtime gives through `CNI_COMMAND`.
public enum CNICommand: String, Sendable, CaseIterable {
    case add = "ADD", del = "DEL", check = "CHECK", status = "STATUS", gc = "GC", version = "VERSION"

    /// The command named `name`: `init(rawValue:)` without the array of names it builds (one generic
    /// type less to instantiate at every exec).
    init?(name: String) {
        switch name {
        case "ADD": self = .add
        case "DEL": self = .del
        case "CHECK": self = .check
        case "STATUS": self = .status
        case "GC": self = .gc
        case "VERSION": self = .version
        default: return nil
        }
    }
}

/// The `CNI_*` environment of one invocation, validated as the spec requires for each command.
public struct CNIEnvironment: Sendable {
    public let command: CNICommand
    public let containerID: String
    /// Empty when the runtime passed none (allowed for DEL).
    public let netns: String
    public let ifname: String
    /// `CNI_ARGS` as key/value pairs, in order.
    public let args: [(key: String, value: String)]
    public let path: [String]

    /// Reads and validates the variables; a missing or malformed one is error 4.
    public init(_ variables: [String: String]) throws(CNIError) {
        try self.init { variables[$0] }
    }

    /// Reads and validates the variables `variable` returns by name (strait-cni passes `getenv`, so the
    /// process never copies its whole environment); a missing or malformed one is error 4.
    public init(variable: (String) -> String?) throws(CNIError) {
        guard let commandText = variable("CNI_COMMAND"), !commandText.isEmpty else {
            throw CNIError(.invalidEnvironment, "CNI_COMMAND is not set")
        }
        guard let command = CNICommand(name: commandText) else {
            throw CNIError(.invalidEnvironment, "CNI_COMMAND \"\(commandText)\" is not a CNI command",
                           details: "expected one of \(CNICommand.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        self.command = command
        containerID = variable("CNI_CONTAINERID") ?? ""
        netns = variable("CNI_NETNS") ?? ""
        ifname = variable("CNI_IFNAME") ?? ""
        path = (variable("CNI_PATH") ?? "").split(separator: ":").map(String.init)
        args = try Self.parseArgs(variable("CNI_ARGS") ?? "")

        switch command {
        case .add, .check, .del:
            try Self.validateContainerID(containerID)
            try Self.validateInterfaceName(ifname)
            if command != .del && netns.isEmpty {
                throw CNIError(.invalidEnvironment, "CNI_NETNS is required for \(command.rawValue)")
            }
        case .status, .gc, .version:
            break
        }
    }

    /// The value of a `CNI_ARGS` key, such as `IP` or `K8S_POD_NAME`.
    public func arg(_ key: String) -> String? { args.first { $0.key == key }?.value }

    private static func parseArgs(_ text: String) throws(CNIError) -> [(key: String, value: String)] {
        var pairs: [(key: String, value: String)] = []
        for item in text.split(separator: ";") where !item.isEmpty {
            let parts = item.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard parts.count == 2, !parts[0].isEmpty else {
                throw CNIError(.invalidEnvironment, "CNI_ARGS item \"\(item)\" is not KEY=VALUE")
            }
            pairs.append((String(parts[0]), String(parts[1])))
        }
        return pairs
    }

    /// The spec: non-empty, an alphanumeric first, then alphanumerics, `_`, `.` or `-`.
    static func validateContainerID(_ id: String) throws(CNIError) {
        guard let first = id.utf8.first else {
            throw CNIError(.invalidEnvironment, "CNI_CONTAINERID is required")
        }
        let valid = isAlphanumeric(first) && id.utf8.allSatisfy { isAlphanumeric($0) || "_.-".utf8.contains($0) }
        guard valid else {
            throw CNIError(.invalidEnvironment, "CNI_CONTAINERID \"\(id)\" has characters the spec does not allow",
                           details: "an alphanumeric first, then alphanumerics, '_', '.' or '-'")
        }
    }

    /// A Linux interface name: 1–15 bytes, no '/', ':' or whitespace, not "." or "..". Unicode's
    /// whitespace properties are looked up only for a name with a byte beyond ASCII.
    static func validateInterfaceName(_ name: String) throws(CNIError) {
        guard !name.isEmpty else { throw CNIError(.invalidEnvironment, "CNI_IFNAME is required") }
        let bad = name.utf8.count > 15 || name == "." || name == ".."
            || name.utf8.contains { $0 == UInt8(ascii: "/") || $0 == UInt8(ascii: ":") || isASCIIWhitespace($0) }
            || (!name.utf8.allSatisfy { $0 < 0x80 } && name.unicodeScalars.contains { $0.properties.isWhitespace })
        if bad { throw CNIError(.invalidEnvironment, "CNI_IFNAME \"\(name)\" is not a valid interface name") }
    }

    /// ASCII letters and digits, the spec's alphanumerics, tested on the byte: Unicode's property tables
    /// (`Unicode.Scalar.Properties`) are pages of the binary every exec would fault in for them.
    private static func isAlphanumeric(_ byte: UInt8) -> Bool {
        (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte) || (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte)
            || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
    }

    /// Tab, line feed, vertical tab, form feed, carriage return and space: the ASCII whitespace.
    private static func isASCIIWhitespace(_ byte: UInt8) -> Bool { (9...13).contains(byte) || byte == 32 }
}

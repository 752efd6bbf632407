/// kube-proxy's command line, as `strait proxy` takes it: every flag of kube-proxy v1.36 is
/// known, with pflag's syntax (`--name=value`, `--name value`, a bare `--name` or `--name=false`
/// for a boolean, `-v=2`, `-v 2`). A flag Strait implements sets its `ProxyConfiguration` field; a
/// flag it does not implement is accepted with a warning naming it, so a kubeadm manifest never
/// fails to start; a name kube-proxy does not have either is an error.
///
/// Precedence is kube-proxy's (measured with v1.36.2 `--write-config-to`): with `--config`, the
/// file gives every setting and other flags are ignored (with a warning here), except
/// `--hostname-override` and the log verbosity `--v`, which override the file.
public struct KubeProxyFlags: Sendable {
    /// One flag of kube-proxy's command line.
    public struct Flag: Sendable {
        /// Sets the flag's field from its value.
        public typealias Apply = @Sendable (inout ProxyConfiguration, String) throws(ProxyConfiguration.Error) -> Void

        public enum Kind: Sendable, Hashable {
            /// A boolean: bare means true.
            case bool
            /// Takes a value; the string names its type in help (`duration`, `int32`, …).
            case value(String)
        }

        public enum Support: Sendable {
            /// Sets a field of the configuration; `overridesConfigFile` for kube-proxy's two
            /// flags that win over `--config`.
            case configuration(overridesConfigFile: Bool = false, apply: Apply)
            /// Steers the command itself (`--config`, `--cleanup`, `--init-only`, `--write-config-to`).
            case command
            /// Accepted and ignored, with this reason in the warning.
            case ignored(String)
            /// Accepted; a value Strait does what it asks for is silent, another gets the warning.
            case valueChecked(accepts: @Sendable (String) -> Bool, reason: String)
        }

        public var name: String
        public var kind: Kind
        public var support: Support
        public var help: String
        /// Strait's own flag (not kube-proxy's).
        public var straitOnly = false
    }

    /// What a command line asked for.
    public struct Parsed: Sendable {
        /// Given flags with their values, in order (a boolean's value is `true` or `false`).
        public var given: [(flag: Flag, value: String)] = []
        public var warnings: [String] = []

        /// The last value of a flag, if given.
        public func value(_ name: String) -> String? { given.last { $0.flag.name == name }?.value }

        public func bool(_ name: String) -> Bool { value(name) == "true" }

        /// Sets the fields of `configuration` the flags name. With `configFileGiven` only the flags
        /// kube-proxy lets override the file apply; the others are reported in the returned warnings.
        public func apply(to configuration: inout ProxyConfiguration,
                          configFileGiven: Bool) throws(ProxyConfiguration.Error) -> [String] {
            var warnings: [String] = []
            for (flag, value) in given {
                guard case .configuration(let overrides, let apply) = flag.support else { continue }
                if configFileGiven && !overrides {
                    warnings.append("--\(flag.name) is ignored: with --config, kube-proxy takes every setting "
                                    + "from the file")
                    continue
                }
                try apply(&configuration, value)
            }
            return warnings
        }
    }

    public static let all: [Flag] = KubeProxyFlagTable.flags

    static let byName: [String: Flag] = Dictionary(uniqueKeysWithValues: all.map { ($0.name, $0) })

    /// Parses `arguments` (no program name). Throws on a name kube-proxy does not have, a missing
    /// value, or a boolean that is not true or false; does not apply anything.
    public static func parse(_ arguments: [String]) throws(ProxyConfiguration.Error) -> Parsed {
        var parsed = Parsed()
        var index = 0
        while index < arguments.count {
            let argument = arguments[index]
            index += 1
            var body: Substring
            if argument.hasPrefix("--") {
                body = argument.dropFirst(2)
            } else if argument.hasPrefix("-"), argument.count > 1 {
                body = argument.dropFirst()
                // pflag's shorthand: -v only (kube-proxy's one short flag); -v2 means -v=2.
                if body.first == "v", body.count > 1, body.dropFirst().first != "=" {
                    body = "v=" + body.dropFirst()
                }
                guard body == "v" || body.hasPrefix("v=") else {
                    throw .init(field: argument, problem: "unknown shorthand flag (kube-proxy has only -v)")
                }
            } else {
                throw .init(field: argument, problem: "unexpected argument (kube-proxy takes flags only)")
            }
            var name = body
            var inlineValue: String?
            if let equals = body.firstIndex(of: "=") {
                name = body[..<equals]
                inlineValue = String(body[body.index(after: equals)...])
            }
            guard let flag = byName[String(name)] else {
                throw .init(field: "--\(name)", problem: "unknown flag (not a kube-proxy v1.36 flag)")
            }
            let value: String
            switch flag.kind {
            case .bool:
                guard let text = inlineValue else {
                    value = "true"
                    break
                }
                guard let bool = parseBool(text) else {
                    throw .init(field: "--\(name)", problem: "\(String(reflecting: text)) is not true or false")
                }
                value = String(bool)
            case .value:
                if let inlineValue {
                    value = inlineValue
                } else {
                    guard index < arguments.count else { throw .init(field: "--\(name)", problem: "needs a value") }
                    value = arguments[index]
                    index += 1
                }
            }
            parsed.given.append((flag, value))
            switch flag.support {
            case .ignored(let reason):
                parsed.warnings.append("--\(flag.name) is accepted but not implemented by Strait: \(reason)")
            case .valueChecked(let accepts, let reason) where !accepts(value):
                parsed.warnings.append("--\(flag.name)=\(value) is accepted but not implemented by Strait: \(reason)")
            default:
                break
            }
        }
        return parsed
    }

    /// Go's `strconv.ParseBool`.
    static func parseBool(_ text: String) -> Bool? {
        switch text {
        case "1", "t", "T", "true", "TRUE", "True": true
        case "0", "f", "F", "false", "FALSE", "False": false
        default: nil
        }
    }

    /// The flag list for `--help`: each name and value type, then what Strait does with it, wrapped
    /// to `width` columns (ArgumentParser wraps longer lines without the indent).
    public static func helpText(width: Int = 78) -> String {
        var lines: [String] = []
        for flag in all {
            var head = "  --\(flag.name)"
            if case .value(let type) = flag.kind { head += " <\(type)>" }
            var help = flag.help
            switch flag.support {
            case .ignored(let reason): help = "Accepted, not implemented: \(reason)."
            case .valueChecked(_, let reason): help += " Other values: accepted, not implemented: \(reason)."
            default: break
            }
            if flag.straitOnly { help += " (Strait only.)" }
            lines.append(head)
            var line = "       "
            for word in help.split(separator: " ") {
                if line.count + word.count + 1 > width && line.count > 7 {
                    lines.append(line)
                    line = "       "
                }
                line += " " + word
            }
            lines.append(line)
        }
        return lines.joined(separator: "\n")
    }
}

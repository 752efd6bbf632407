import StraitSystem

/// Writes a `JSONValue` the way strait-cni has always printed its results and lease book
/// (Foundation's `.prettyPrinted, .sortedKeys, .withoutEscapingSlashes` layout): two-space indent,
/// `"key" : value`, keys in byte order. Written as UTF-8 bytes: appending to a `String` scalar by scalar and
/// padding with `String(repeating:)` cost each ADD more than its netlink requests (see BENCHMARKS.md, "CNI ADD
/// against the kernel floor").
enum JSONWriter {
    static func prettyPrinted(_ value: JSONValue) -> String {
        var output: [UInt8] = []
        output.reserveCapacity(1024)
        write(value, indent: 0, into: &output)
        return String(decoding: output, as: UTF8.self)
    }

    private static func write(_ value: JSONValue, indent: Int, into output: inout [UInt8]) {
        switch value {
        case .null: output += "null".utf8
        case .bool(let flag): output += (flag ? "true" : "false").utf8
        case .number(let number): output += numberText(number).utf8
        case .string(let text): writeString(text, into: &output)
        case .array(let elements):
            if elements.isEmpty { output += "[]".utf8; return }
            output += "[\n".utf8
            for (position, element) in elements.enumerated() {
                writeIndent(indent + 2, into: &output)
                write(element, indent: indent + 2, into: &output)
                output += (position == elements.count - 1 ? "\n" : ",\n").utf8
            }
            writeIndent(indent, into: &output)
            output.append(UInt8(ascii: "]"))
        case .object(let members):
            if members.isEmpty { output += "{}".utf8; return }
            output += "{\n".utf8
            let keys = members.keys.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
            for (position, key) in keys.enumerated() {
                writeIndent(indent + 2, into: &output)
                writeString(key, into: &output)
                output += " : ".utf8
                write(members[key]!, indent: indent + 2, into: &output)
                output += (position == keys.count - 1 ? "\n" : ",\n").utf8
            }
            writeIndent(indent, into: &output)
            output.append(UInt8(ascii: "}"))
        }
    }

    private static func writeIndent(_ count: Int, into output: inout [UInt8]) {
        output.append(contentsOf: repeatElement(UInt8(ascii: " "), count: count))
    }

    /// Integers as integers (JSON numbers are read as doubles), others in Swift's shortest form.
    private static func numberText(_ number: Double) -> String {
        if number.rounded() == number, abs(number) < 1e15 { return String(Int64(number)) }
        return "\(number)"
    }

    /// Quotes, backslashes and control characters escaped; every other byte (multi-byte characters
    /// included) as it is.
    private static func writeString(_ text: String, into output: inout [UInt8]) {
        output.append(UInt8(ascii: "\""))
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "\""): output += #"\""#.utf8
            case UInt8(ascii: "\\"): output += #"\\"#.utf8
            case UInt8(ascii: "\n"): output += #"\n"#.utf8
            case UInt8(ascii: "\r"): output += #"\r"#.utf8
            case UInt8(ascii: "\t"): output += #"\t"#.utf8
            case 0x08: output += #"\b"#.utf8
            case 0x0C: output += #"\f"#.utf8
            case 0x00...0x1F:
                output += #"\u"#.utf8
                output += HexDigits.text(UInt64(byte), count: 4).utf8
            default: output.append(byte)
            }
        }
        output.append(UInt8(ascii: "\""))
    }
}

/// Lowercase hex text written byte by byte. strait-cni names interfaces and MACs in hex at every ADD;
/// `String(_:radix:)`, zero-padding by concatenation and `joined(separator:)` reach generic standard-library
/// code that is not specialized there, and the runtime then builds its types from mangled names and scans the
/// conformance records at each exec (see BENCHMARKS.md, "CNI ADD against the kernel floor"). Inlinable and
/// table-free, so its callers compile it with their own settings.
public enum HexDigits {
    /// The digit of a nibble (0...15).
    @inlinable static func digit(_ nibble: UInt8) -> UInt8 {
        nibble < 10 ? UInt8(ascii: "0") + nibble : UInt8(ascii: "a") + nibble - 10
    }

    /// The low `count` nibbles of `value`, most significant first, zero-padded: (0x2a, 4) is `002a`.
    @inlinable public static func text(_ value: UInt64, count: Int) -> String {
        String(unsafeUninitializedCapacity: count) { buffer in
            for position in 0..<count {
                let shift = UInt64(4 * (count - 1 - position))
                buffer[position] = digit(UInt8((value >> shift) & 0xf))
            }
            return count
        }
    }

    /// Two digits per byte, `separator` between bytes: [0x0a, 0x58] with ":" is `0a:58`.
    @inlinable public static func text(bytes: UnsafeRawBufferPointer, separator: UInt8) -> String {
        let count = bytes.isEmpty ? 0 : bytes.count * 3 - 1
        return String(unsafeUninitializedCapacity: count) { buffer in
            for (index, byte) in bytes.enumerated() {
                if index > 0 { buffer[3 * index - 1] = separator }
                buffer[3 * index] = digit(byte >> 4)
                buffer[3 * index + 1] = digit(byte & 0xf)
            }
            return count
        }
    }

    /// The same for an array of bytes.
    @inlinable public static func text(bytes: [UInt8], separator: UInt8) -> String {
        bytes.withUnsafeBytes { text(bytes: $0, separator: separator) }
    }
}

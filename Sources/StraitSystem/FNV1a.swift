/// FNV-1a, 64 bits, over bytes added piece by piece (the same value as over them joined, without
/// joining them): a hash that is the same in every process and build, for names and checksums that
/// must not change across runs (Swift's own `Hasher` is seeded per process). Not a defence against
/// forgery. Inlinable, so strait-cni's callers get it specialized (see its target in Package.swift).
public struct FNV1a: Sendable {
    @usableFromInline var state: UInt64

    public var value: UInt64 { state }

    @inlinable public init() { state = 0xcbf2_9ce4_8422_2325 }

    @inlinable public mutating func add(_ byte: UInt8) {
        state ^= UInt64(byte)
        state &*= 0x0000_0100_0000_01b3
    }

    @inlinable public mutating func add(_ text: String) {
        for byte in text.utf8 { add(byte) }
    }

    @inlinable public mutating func add(_ bytes: [UInt8]) {
        for byte in bytes { add(byte) }
    }
}

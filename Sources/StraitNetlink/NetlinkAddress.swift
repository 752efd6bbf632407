#if canImport(Glibc)
import Glibc
#endif
import CNetlink
import StraitSystem

/// An owned libnl `nl_addr`: an IP address or prefix, or a MAC address, parsed from text.
/// Internal: the public API takes and returns addresses as text.
final class NetlinkAddress {
    /// Private so that every use goes through `withPointer`, which keeps the address alive until
    /// libnl has taken its own reference (Swift may otherwise free it right after reading `pointer`).
    private let pointer: OpaquePointer

    /// Parses "10.0.0.1", "10.0.0.0/24", "fd00::1/64" or "default" (with `family` saying which default).
    init(ip text: String, family: Int32 = AF_UNSPEC, for operation: String) throws(NetlinkError) {
        var parsed: OpaquePointer?
        try netlink(operation, text, nl_addr_parse(text, family, &parsed))
        let address = try allocated(parsed, text)
        let parsedFamily = nl_addr_get_family(address)
        // Checked before `pointer` is set: once it is, a throwing init runs deinit, which puts it.
        guard parsedFamily == AF_INET || parsedFamily == AF_INET6 else {
            nl_addr_put(address)
            throw NetlinkError(operation: operation, object: text, code: .addressFamilyNotSupported)
        }
        pointer = address
    }

    /// Parses a MAC address such as "aa:bb:cc:dd:ee:ff".
    init(mac text: String, for operation: String) throws(NetlinkError) {
        var parsed: OpaquePointer?
        try netlink(operation, text, nl_addr_parse(text, AF_LLC, &parsed))
        let address = try allocated(parsed, text)
        guard nl_addr_get_len(address) == 6 else {
            nl_addr_put(address)
            throw NetlinkError(operation: operation, object: text, code: .invalidArgument)
        }
        pointer = address
    }

    deinit { nl_addr_put(pointer) }

    /// Hands the `nl_addr` to `body` (a libnl setter, which takes its own reference) while it is alive.
    func withPointer<R, E: Error>(_ body: (OpaquePointer) throws(E) -> R) throws(E) -> R {
        try withExtendedLifetime(self) { () throws(E) -> R in try body(pointer) }
    }

    var family: Int32 { nl_addr_get_family(pointer) }
}

/// The address family `text` is written in: IPv6 when it has a colon, otherwise IPv4.
func addressFamily(of text: String) -> Int32 {
    text.contains(":") ? AF_INET6 : AF_INET
}

/// "10.0.0.1/24", "fd00::1/64": an IP `nl_addr` as text, with its prefix length when it has one.
func ipText(_ address: OpaquePointer?, alwaysWithPrefix: Bool = false) -> String? {
    guard let address, nl_addr_get_len(address) > 0 else { return nil }
    var buffer = [CChar](repeating: 0, count: 128)
    let family = nl_addr_get_family(address)
    guard inet_ntop(family, nl_addr_get_binary_addr(address), &buffer, socklen_t(buffer.count)) != nil else {
        return nil
    }
    let text = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    let prefix = nl_addr_get_prefixlen(address)
    let full: UInt32 = family == AF_INET ? 32 : 128
    return prefix == full && !alwaysWithPrefix ? text : "\(text)/\(prefix)"
}

/// "aa:bb:cc:dd:ee:ff": a link-layer `nl_addr` as lower-case hex pairs (`HexDigits`: strait-cni reads one
/// at every ADD).
func macText(_ address: OpaquePointer?) -> String? {
    guard let address, let bytes = nl_addr_get_binary_addr(address) else { return nil }
    let length = Int(nl_addr_get_len(address))
    guard length > 0 else { return nil }
    return HexDigits.text(bytes: UnsafeRawBufferPointer(start: bytes, count: length), separator: UInt8(ascii: ":"))
}

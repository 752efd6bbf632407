import Foundation
import StraitModel

/// Where the overlay keeps its shared state in the store: flannel's layout (`<prefix>/config`,
/// `<prefix>/subnets/10.244.1.0-24`) under a prefix. With flannel's own prefix,
/// `/coreos.com/network`, Strait agents and flannel agents share one network, and the VXLAN device
/// keeps flannel's name (`flannel.1`), so a node moves from one agent to the other in place.
public struct KeyLayout: Sendable, Hashable, CustomStringConvertible {
    /// The prefix without a trailing slash: "/strait/network".
    public let prefix: String

    public static let strait = KeyLayout(unchecked: "/strait/network")
    public static let flannel = KeyLayout(unchecked: "/coreos.com/network")

    /// Validates `--etcd-prefix`: an absolute key path; a trailing slash is dropped.
    public init(prefix: String) throws(OverlayError) {
        var trimmed = prefix
        while trimmed.count > 1, trimmed.hasSuffix("/") { trimmed.removeLast() }
        guard trimmed.hasPrefix("/"), trimmed.count > 1, !trimmed.contains("//"),
              !trimmed.contains(where: { $0.isWhitespace }) else {
            throw OverlayError(.invalidConfig,
                               "--etcd-prefix \"\(prefix)\" is not an absolute key path like /coreos.com/network")
        }
        self.prefix = trimmed
    }

    private init(unchecked prefix: String) { self.prefix = prefix }

    public var description: String { prefix }
    public var config: String { "\(prefix)/config" }
    public var subnets: String { "\(prefix)/subnets/" }
    /// Whether this is flannel's own network, whose devices carry flannel's names.
    public var isFlannel: Bool { self == .flannel }

    /// flannel's key: `<prefix>/subnets/10.244.1.0-24`, dual stack `…/10.244.1.0-24&fd00:10:244:1::-64`.
    public func key(_ subnet: IPv4CIDR, ipv6: IPv6CIDR? = nil) -> String {
        var name = "\(subnet.network)-\(subnet.prefixLength)"
        if let ipv6 { name += "&\(ipv6.network)-\(ipv6.prefixLength)" }
        return subnets + name
    }

    /// The VXLAN device: `strait.1` / `strait-v6.1`, or flannel's `flannel.1` / `flannel-v6.1`.
    public func deviceName(vni: UInt32, ipv6: Bool = false) -> String {
        let stem = isFlannel ? "flannel" : "strait"
        return ipv6 ? "\(stem)-v6.\(vni)" : "\(stem).\(vni)"
    }
}

/// The default layout's keys (`strait get subnets` reads these).
public enum OverlayKeys {
    public static let prefix = "/strait/network/"
    public static let config = KeyLayout.strait.config
    public static let subnets = KeyLayout.strait.subnets

    /// The subnets a lease key names (`…/subnets/10.244.1.0-24[&fd00::-64]`, any prefix); nil for
    /// keys that are not leases.
    public static func subnets(fromKey key: String) -> (IPv4CIDR, IPv6CIDR?)? {
        guard let range = key.range(of: "/subnets/", options: .backwards) else { return nil }
        let name = key[range.upperBound...]
        let parts = name.split(separator: "&", omittingEmptySubsequences: false)
        guard (1...2).contains(parts.count), let v4 = parse(parts[0], as: IPv4CIDR.self) else { return nil }
        guard parts.count == 2 else { return (v4, nil) }
        guard let v6 = parse(parts[1], as: IPv6CIDR.self) else { return nil }
        return (v4, v6)
    }

    /// The IPv4 subnet a lease key names.
    public static func subnet(fromKey key: String) -> IPv4CIDR? { subnets(fromKey: key)?.0 }

    private static func parse<A: IPAddressValue>(_ text: Substring, as: CIDR<A>.Type) -> CIDR<A>? {
        guard let dash = text.lastIndex(of: "-") else { return nil }
        return try? CIDR<A>(networkParsing: "\(text[..<dash])/\(text[text.index(after: dash)...])")
    }
}

/// One node's subnet lease: the subnets from its key and the value flannel writes, field for field
/// and in flannel's order, `{"PublicIP":"192.168.100.1","PublicIPv6":null,"BackendType":"vxlan",
/// "BackendData":{"VNI":1,"VtepMAC":"…"}}` (dual stack: `PublicIPv6` and `BackendV6Data` set).
public struct SubnetLease: Sendable, Hashable {
    public var subnet: IPv4CIDR
    public var publicIP: IPv4Address
    public var backendType: String
    public var vni: UInt32?
    public var vtepMAC: String?
    /// The IPv6 half of a dual-stack lease.
    public var ipv6Subnet: IPv6CIDR?
    public var publicIPv6: IPv6Address?
    public var ipv6VtepMAC: String?

    public init(subnet: IPv4CIDR, publicIP: IPv4Address, backendType: String, vni: UInt32? = nil, vtepMAC: String? = nil,
                ipv6Subnet: IPv6CIDR? = nil, publicIPv6: IPv6Address? = nil, ipv6VtepMAC: String? = nil) {
        self.subnet = subnet
        self.publicIP = publicIP
        self.backendType = backendType
        self.vni = vni
        self.vtepMAC = vtepMAC
        self.ipv6Subnet = ipv6Subnet
        self.publicIPv6 = publicIPv6
        self.ipv6VtepMAC = ipv6VtepMAC
    }

    /// The lease a store key and value describe; nil when either is malformed.
    public init?(key: String, value: Data) {
        guard let (subnet, ipv6Subnet) = OverlayKeys.subnets(fromKey: key),
              let wire = try? JSONDecoder().decode(Wire.self, from: value),
              let publicIP = try? IPv4Address(parsing: wire.PublicIP)
        else { return nil }
        var publicIPv6: IPv6Address?
        if let text = wire.PublicIPv6 {
            guard let address = try? IPv6Address(parsing: text) else { return nil }
            publicIPv6 = address
        }
        // IPv6 backend data means nothing without the IPv6 subnet in the key; it is not kept.
        self.init(subnet: subnet, publicIP: publicIP, backendType: wire.BackendType ?? BackendType.vxlan.rawValue,
                  vni: wire.BackendData?.VNI, vtepMAC: wire.BackendData?.VtepMAC?.lowercased(),
                  ipv6Subnet: ipv6Subnet, publicIPv6: publicIPv6,
                  ipv6VtepMAC: ipv6Subnet == nil ? nil : wire.BackendV6Data?.VtepMAC?.lowercased())
    }

    /// The key under `layout`.
    public func key(in layout: KeyLayout) -> String { layout.key(subnet, ipv6: ipv6Subnet) }

    /// The default layout's key.
    public var key: String { key(in: .strait) }

    /// The value as flannel's Go `encoding/json` writes `LeaseAttrs`: fields in declaration order,
    /// `PublicIPv6` null when unset, empty backend data left out.
    public var value: Data {
        func text(_ value: String) -> String { Self.jsonString(value) }
        func data(_ mac: String?) -> String? {
            guard vni != nil || mac != nil else { return nil }
            let fields = [vni.map { "\"VNI\":\($0)" }, mac.map { "\"VtepMAC\":\(text($0))" }].compactMap { $0 }
            return "{\(fields.joined(separator: ","))}"
        }
        var fields = ["\"PublicIP\":\(text(publicIP.description))",
                      "\"PublicIPv6\":\(publicIPv6.map { text($0.description) } ?? "null")",
                      "\"BackendType\":\(text(backendType))"]
        if let backend = data(vtepMAC) { fields.append("\"BackendData\":\(backend)") }
        if ipv6Subnet != nil, let backend = data(ipv6VtepMAC) { fields.append("\"BackendV6Data\":\(backend)") }
        return Data("{\(fields.joined(separator: ","))}".utf8)
    }

    /// `value` as a JSON string the way Go's `encoding/json` writes it: quotes, backslashes and control
    /// characters escaped, and `<`, `>`, `&`, U+2028 and U+2029 as `\u` escapes (Go's HTML-safe default).
    static func jsonString(_ value: String) -> String {
        var out = "\""
        for scalar in value.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "<", ">", "&", "\u{2028}", "\u{2029}", "\u{0}"..."\u{1f}":
                let hex = String(scalar.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }

    /// The address the subnet's node gives its VXLAN device: the subnet's `.0`.
    public var vtepAddress: IPv4Address { subnet.network }

    // swiftlint:disable identifier_name
    private struct Wire: Decodable {
        struct Data: Decodable {
            var VNI: UInt32?
            var VtepMAC: String?
        }
        var PublicIP: String
        var PublicIPv6: String?
        var BackendType: String?
        var BackendData: Data?
        var BackendV6Data: Data?
    }
}

import Foundation
import StraitNetlink
import StraitTestSupport

/// Reads kernel state through the real tools (`ip -j …`, `bridge -j …`) inside a test namespace,
/// so tests check what the kernel holds, not what StraitNetlink believes.
extension TestNamespace {
    /// Runs a JSON-printing tool here and returns its array of objects.
    func json(_ arguments: [String]) throws -> [[String: Any]] {
        let text = try run(arguments)
        guard !text.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else { return [] }
        return try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [[String: Any]] ?? []
    }

    /// `ip -j -d link show NAME`, or nil when there is no such device here.
    func linkJSON(_ name: String) throws -> [String: Any]? {
        let result = try output(["ip", "-j", "-d", "link", "show", "dev", name])
        guard result.succeeded else { return nil }
        let objects = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [[String: Any]]
        return objects?.first
    }

    /// The names of every device here, from `ip -j link show`.
    func linkNames() throws -> [String] {
        try json(["ip", "-j", "link", "show"]).compactMap { $0["ifname"] as? String }
    }

    /// "10.0.0.1/24" for each address on `device`, from `ip -j addr show dev DEVICE`.
    func addresses(of device: String) throws -> [String] {
        let links = try json(["ip", "-j", "addr", "show", "dev", device])
        return links.flatMap { link in
            (link["addr_info"] as? [[String: Any]] ?? []).compactMap { info in
                guard let local = info["local"] as? String, let prefix = info["prefixlen"] as? Int else { return nil }
                return "\(local)/\(prefix)"
            }
        }
    }

    /// The routes `ip -j route show ARGS…` lists (IPv6 with `-6` in front).
    func routes(_ arguments: [String], ipv6: Bool = false) throws -> [[String: Any]] {
        try json(["ip", "-j"] + (ipv6 ? ["-6"] : []) + ["route", "show"] + arguments)
    }
}

extension NetlinkSocket {
    /// A plain device for tests: one end of a veth pair (its peer is NAME + "p", up alongside it so
    /// the device has carrier). A veth end rather than a dummy because this kernel has no dummy driver.
    func addTestDevice(_ name: String, up: Bool = true) throws {
        try addLink(LinkSpec(name: name, kind: .veth(peer: name + "p"), up: up))
        if up { try setLink(name + "p", up: true) }
    }
}

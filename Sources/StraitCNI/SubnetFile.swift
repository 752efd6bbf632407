#if canImport(Glibc)
import Glibc
#endif

/// `/run/strait/subnet.env`, written by `strait overlay` for this plugin: the cluster network, this
/// node's subnet, its MTU and whether the overlay masquerades (then the plugin need not).
///
///     STRAIT_NETWORK=10.244.0.0/16
///     STRAIT_SUBNET=10.244.1.1/24
///     STRAIT_MTU=1450
///     STRAIT_IPMASQ=true
///     STRAIT_IPV6_NETWORK=fd00:10:244::/56
///     STRAIT_IPV6_SUBNET=fd00:10:244:1::1/64
public struct SubnetFile: Sendable, Equatable {
    public var network: String?
    public var subnet: String?
    public var ipv6Network: String?
    public var ipv6Subnet: String?
    public var mtu: Int?
    public var ipMasq: Bool?

    public init(network: String? = nil, subnet: String? = nil, ipv6Network: String? = nil,
                ipv6Subnet: String? = nil, mtu: Int? = nil, ipMasq: Bool? = nil) {
        self.network = network
        self.subnet = subnet
        self.ipv6Network = ipv6Network
        self.ipv6Subnet = ipv6Subnet
        self.mtu = mtu
        self.ipMasq = ipMasq
    }

    /// Parses `KEY=VALUE` lines; blank lines and `#` comments are skipped, unknown keys ignored.
    public init(parsing text: String, path: String) throws(CNIError) {
        for (number, rawLine) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = rawLine.trimmingASCIIWhitespace()
            if line.isEmpty || line.hasPrefix("#") { continue }
            let parts = line.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard parts.count == 2 else {
                throw CNIError(.invalidNetworkConfig, "\(path):\(number + 1) is not KEY=VALUE")
            }
            let value = String(parts[1])
            switch parts[0] {
            case "STRAIT_NETWORK": network = value
            case "STRAIT_SUBNET": subnet = value
            case "STRAIT_IPV6_NETWORK": ipv6Network = value
            case "STRAIT_IPV6_SUBNET": ipv6Subnet = value
            case "STRAIT_MTU":
                guard let mtu = Int(value) else {
                    throw CNIError(.invalidNetworkConfig, "\(path): STRAIT_MTU \"\(value)\" is not a number")
                }
                self.mtu = mtu
            case "STRAIT_IPMASQ":
                guard value == "true" || value == "false" else {
                    throw CNIError(.invalidNetworkConfig, "\(path): STRAIT_IPMASQ \"\(value)\" is not true or false")
                }
                ipMasq = value == "true"
            default: continue
            }
        }
        guard subnet != nil || ipv6Subnet != nil else {
            throw CNIError(.invalidNetworkConfig, "\(path) names no subnet (STRAIT_SUBNET or STRAIT_IPV6_SUBNET)")
        }
    }

    /// Reads the file. A missing file means the overlay agent has not started yet: error 11, so the
    /// runtime retries instead of failing the pod for good (flannel's start-up race).
    public static func read(_ path: String) throws(CNIError) -> SubnetFile {
        let text: String
        do throws(FileError) {
            text = try readTextFile(path)
        } catch where error.errno == ENOENT {
            throw CNIError(.tryAgainLater, "\(path) does not exist yet", details: "is strait overlay running on this node?")
        } catch {
            throw CNIError(.ioFailure, "cannot read \(path)", details: error.description)
        }
        return try SubnetFile(parsing: text, path: path)
    }

    /// The file's text, in the order `parsing` reads it.
    public var text: String {
        var lines: [String] = []
        if let network { lines.append("STRAIT_NETWORK=\(network)") }
        if let subnet { lines.append("STRAIT_SUBNET=\(subnet)") }
        if let ipv6Network { lines.append("STRAIT_IPV6_NETWORK=\(ipv6Network)") }
        if let ipv6Subnet { lines.append("STRAIT_IPV6_SUBNET=\(ipv6Subnet)") }
        if let mtu { lines.append("STRAIT_MTU=\(mtu)") }
        if let ipMasq { lines.append("STRAIT_IPMASQ=\(ipMasq)") }
        return lines.joined(separator: "\n") + "\n"
    }
}

extension Substring {
    func trimmingASCIIWhitespace() -> Substring {
        var result = self
        while let first = result.first, first == " " || first == "\t" || first == "\r" { result = result.dropFirst() }
        while let last = result.last, last == " " || last == "\t" || last == "\r" { result = result.dropLast() }
        return result
    }
}

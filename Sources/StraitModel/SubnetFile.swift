/// `subnet.env`, the contract between `strait overlay` (which writes it) and `strait-cni` (which
/// reads it): the cluster network, this node's subnet, its MTU and whether the overlay masquerades.
///
///     STRAIT_NETWORK=10.244.0.0/16
///     STRAIT_SUBNET=10.244.1.1/24
///     STRAIT_MTU=1450
///     STRAIT_IPMASQ=true
///     STRAIT_IPV6_NETWORK=fd00:10:244::/56
///     STRAIT_IPV6_SUBNET=fd00:10:244:1::1/64
///
/// `STRAIT_SUBNET` is the subnet's first usable address with the prefix length, as flannel writes it.
/// The same keys with flannel's `FLANNEL_` prefix (`/run/flannel/subnet.env`) read the same, so
/// flannel's CNI plugin and strait-cni both work on a node during a migration.
public struct SubnetFile: Sendable, Equatable {
    /// The key prefix a file is written with.
    public enum Naming: String, Sendable, Hashable, CaseIterable {
        case strait = "STRAIT_"
        case flannel = "FLANNEL_"
    }

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

    /// The file for an IPv4 node subnet.
    public init(network: IPv4CIDR, subnet: IPv4CIDR, mtu: Int, ipMasq: Bool) {
        self.init(network: network.description, subnet: "\(subnet.firstUsable)/\(subnet.prefixLength)",
                  mtu: mtu, ipMasq: ipMasq)
    }

    /// What is wrong with a subnet file, and on which line.
    public struct ParseError: Error, Sendable, Equatable, CustomStringConvertible {
        public var line: Int?
        public var reason: String
        public var description: String { line.map { "line \($0): \(reason)" } ?? reason }
    }

    /// Parses `KEY=VALUE` lines; blank lines and `#` comments are skipped, unknown keys ignored.
    /// A file without any subnet is an error.
    public init(parsing text: String) throws(ParseError) {
        // Split on any line break: "\r\n" is one Character in Swift, so splitting on "\n" would miss it.
        for (number, rawLine) in text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline).enumerated() {
            let line = rawLine.trimmingASCIIWhitespace()
            if line.isEmpty || line.hasPrefix("#") { continue }
            let parts = line.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard parts.count == 2 else { throw ParseError(line: number + 1, reason: "not KEY=VALUE") }
            let value = String(parts[1])
            let key = parts[0]
            guard let naming = Naming.allCases.first(where: { key.hasPrefix($0.rawValue) }) else { continue }
            switch key.dropFirst(naming.rawValue.count) {
            case "NETWORK": network = value
            case "SUBNET": subnet = value
            case "IPV6_NETWORK": ipv6Network = value
            case "IPV6_SUBNET": ipv6Subnet = value
            case "MTU":
                guard let mtu = Int(value) else {
                    throw ParseError(line: number + 1, reason: "\(key) \"\(value)\" is not a number")
                }
                self.mtu = mtu
            case "IPMASQ":
                guard value == "true" || value == "false" else {
                    throw ParseError(line: number + 1, reason: "\(key) \"\(value)\" is not true or false")
                }
                ipMasq = value == "true"
            default: continue
            }
        }
        guard subnet != nil || ipv6Subnet != nil else {
            throw ParseError(line: nil, reason: "no subnet (STRAIT_SUBNET, STRAIT_IPV6_SUBNET or their FLANNEL_ forms)")
        }
    }

    /// The IPv4 subnet itself (`10.244.1.0/24`), if the file names one.
    public var ipv4Subnet: IPv4CIDR? { subnet.flatMap { try? IPv4CIDR(parsing: $0).masked } }

    /// The file's text with Strait's names.
    public var text: String { text(naming: .strait) }

    /// The file's text in flannel's order, with `naming`'s prefix.
    public func text(naming: Naming) -> String {
        let p = naming.rawValue
        var lines: [String] = []
        if let network { lines.append("\(p)NETWORK=\(network)") }
        if let subnet { lines.append("\(p)SUBNET=\(subnet)") }
        if let ipv6Network { lines.append("\(p)IPV6_NETWORK=\(ipv6Network)") }
        if let ipv6Subnet { lines.append("\(p)IPV6_SUBNET=\(ipv6Subnet)") }
        if let mtu { lines.append("\(p)MTU=\(mtu)") }
        if let ipMasq { lines.append("\(p)IPMASQ=\(ipMasq)") }
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

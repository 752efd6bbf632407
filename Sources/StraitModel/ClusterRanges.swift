/// The ranges an API server hands Service addresses and node ports out of
/// (`kube-apiserver --service-cluster-ip-range --service-node-port-range`), and the addresses it
/// never lets a Service or an EndpointSlice name. `strait apply` refuses what the API server
/// would refuse here, so the proxy never programs an address or port outside them.
public struct ClusterRanges: Sendable, Hashable {
    /// At most one range per family; empty means cluster IPs are not range-checked.
    public var serviceCIDRs: [IPCIDR]
    public var nodePorts: ClosedRange<Int>

    /// The API server's default `--service-node-port-range`.
    public static let defaultNodePorts = 30000...32767

    public init(serviceCIDRs: [IPCIDR] = [], nodePorts: ClosedRange<Int> = Self.defaultNodePorts) {
        self.serviceCIDRs = serviceCIDRs
        self.nodePorts = nodePorts
    }

    /// Reads the flag values: CIDRs separated by commas (one per family), and `30000-32767`.
    public init(serviceCIDRs text: String?, nodePorts portText: String?) throws(RangeError) {
        var cidrs: [IPCIDR] = []
        for item in (text ?? "").split(separator: ",") {
            let trimmed = item.trimmingSpaces
            guard let cidr = try? IPCIDR(networkParsing: trimmed) else {
                throw RangeError("--service-cluster-ip-range: \(String(reflecting: String(trimmed))) is not a network CIDR "
                    + "like 10.96.0.0/12")
            }
            if cidrs.contains(where: { $0.family == cidr.family }) {
                throw RangeError("--service-cluster-ip-range: two \(cidr.family.rawValue) ranges; give one per family")
            }
            cidrs.append(cidr)
        }
        var ports = Self.defaultNodePorts
        if let portText {
            let parts = portText.split(separator: "-", omittingEmptySubsequences: false)
            guard parts.count == 2, let low = Int(parts[0].trimmingSpaces), let high = Int(parts[1].trimmingSpaces),
                  1 <= low, low <= high, high <= 65535 else {
                throw RangeError("--service-node-port-range: \(String(reflecting: portText)) is not a port range "
                    + "like 30000-32767")
            }
            ports = low...high
        }
        self.init(serviceCIDRs: cidrs, nodePorts: ports)
    }

    /// A flag value that is not a range; the message names the flag.
    public struct RangeError: Error, Sendable, Hashable, CustomStringConvertible {
        public var description: String
        public init(_ description: String) { self.description = description }
    }

    /// Every address and port of `object` the API server would refuse under these ranges, each
    /// naming the field. Values that do not parse are left to `validationErrors()`.
    public func problems(_ object: KubeObject) -> [ModelError] {
        switch object {
        case .service(let service): problems(service)
        case .endpointSlice(let slice): problems(slice)
        case .node: []
        }
    }

    func problems(_ service: Service) -> [ModelError] {
        var v = Validator(object: service.reference)
        let ips = [("spec.clusterIP", service.spec.clusterIP)]
            + (service.spec.clusterIPs ?? []).enumerated().map { ("spec.clusterIPs[\($0.offset)]", $0.element) }
        if !serviceCIDRs.isEmpty {
            for (field, text) in ips {
                guard let text, let address = IPAddress(text) else { continue }
                let ranges = serviceCIDRs.filter { $0.family == address.family }
                if ranges.isEmpty {
                    v.fail(field, "\(text) is \(address.family.rawValue), but no \(address.family.rawValue) service range "
                        + "is configured (--service-cluster-ip-range \(list(serviceCIDRs)))")
                } else if !ranges.contains(where: { $0.contains(address) }) {
                    v.fail(field, "\(text) is not in the service range \(list(ranges)) (--service-cluster-ip-range)")
                }
            }
        }
        let allowsNodePorts = [.nodePort, .loadBalancer].contains(service.type)
        for (i, port) in service.ports.enumerated() {
            guard let nodePort = port.nodePort, nodePort != 0 else { continue }
            let field = "spec.ports[\(i)].nodePort"
            if !allowsNodePorts {
                v.fail(field, "may not be used when spec.type is \(service.type.rawValue)")
            } else if !nodePorts.contains(nodePort) {
                v.fail(field, "\(nodePort) is not in the node port range \(portRange) (--service-node-port-range)")
            }
        }
        if let port = service.spec.healthCheckNodePort, port != 0, !nodePorts.contains(port) {
            v.fail("spec.healthCheckNodePort", "\(port) is not in the node port range \(portRange) (--service-node-port-range)")
        }
        for (i, text) in (service.spec.externalIPs ?? []).enumerated() {
            if let address = IPAddress(text), let special = Self.special(address) {
                v.fail("spec.externalIPs[\(i)]", "\(text) may not be \(special)")
            }
        }
        return v.errors
    }

    func problems(_ slice: EndpointSlice) -> [ModelError] {
        var v = Validator(object: slice.reference)
        for (i, endpoint) in (slice.endpoints ?? []).enumerated() {
            for (j, text) in endpoint.addresses.enumerated() {
                if let address = IPAddress(text), let special = Self.special(address) {
                    v.fail("endpoints[\(i)].addresses[\(j)]", "\(text) may not be \(special)")
                }
            }
        }
        return v.errors
    }

    /// What the API server's `ValidateNonSpecialIP` says an address is, if it is special.
    static func special(_ address: IPAddress) -> String? {
        let ranges: [(String, String)] = address.family == .ipv4
            ? [("0.0.0.0/32", "unspecified"), ("127.0.0.0/8", "in the loopback range"),
               ("169.254.0.0/16", "in the link-local range"), ("224.0.0.0/24", "in the link-local multicast range")]
            : [("::/128", "unspecified"), ("::1/128", "in the loopback range"),
               ("fe80::/10", "in the link-local range"), ("ff02::/16", "in the link-local multicast range")]
        return ranges.first { IPCIDR($0.0)!.contains(address) }.map { "\($0.1) (\($0.0))" }
    }

    private var portRange: String { "\(nodePorts.lowerBound)-\(nodePorts.upperBound)" }
    private func list(_ cidrs: [IPCIDR]) -> String { cidrs.map(\.description).joined(separator: ",") }
}

extension Substring {
    /// Without leading and trailing spaces (`--flag "a, b"`).
    fileprivate var trimmingSpaces: Substring {
        guard let start = firstIndex(where: { $0 != " " }), let end = lastIndex(where: { $0 != " " }) else { return "" }
        return self[start...end]
    }
}

import Foundation
import StraitModel

/// A node's VTEP data as annotations on its Node, flannel's kube subnet manager's set under
/// Strait's prefix (`--kube-annotation-prefix`, default `strait.io`; flannel's own,
/// `flannel.alpha.coreos.com`, makes Strait and flannel nodes read each other):
/// `<prefix>/backend-type: vxlan`, `<prefix>/backend-data: {"VNI":1,"VtepMAC":"…"}`,
/// `<prefix>/public-ip: 192.168.100.1`, `<prefix>/kube-subnet-manager: "true"`, and on a dual-stack
/// network `<prefix>/backend-v6-data` and `<prefix>/public-ipv6`. The subnets are the Node's
/// `spec.podCIDRs`. Equivalent: `kubectl annotate node N strait.io/public-ip=…`.
public struct NodeAnnotations: Sendable, Hashable {
    public static let defaultPrefix = "strait.io"

    public let prefix: String

    /// Refuses a prefix that cannot start an annotation key (a DNS subdomain), naming it.
    public init(prefix: String = defaultPrefix) throws(OverlayError) {
        func alphanumeric(_ c: Character?) -> Bool { c.map { $0.isASCII && ($0.isLowercase || $0.isNumber) } ?? false }
        let characters = prefix.allSatisfy { alphanumeric($0) || $0 == "." || $0 == "-" }
        guard characters, prefix.count <= 253, alphanumeric(prefix.first), alphanumeric(prefix.last) else {
            throw OverlayError(.invalidConfig, "--kube-annotation-prefix \(String(reflecting: prefix)) is not a DNS "
                + "subdomain like strait.io")
        }
        self.prefix = prefix
    }

    public var backendType: String { "\(prefix)/backend-type" }
    public var backendData: String { "\(prefix)/backend-data" }
    public var backendV6Data: String { "\(prefix)/backend-v6-data" }
    public var publicIP: String { "\(prefix)/public-ip" }
    public var publicIPv6: String { "\(prefix)/public-ipv6" }
    public var kubeSubnetManager: String { "\(prefix)/kube-subnet-manager" }

    /// The annotations that publish `lease` (its subnets are the Node's, not annotated).
    public func values(for lease: SubnetLease) -> [String: String] {
        var values = [
            backendType: lease.backendType,
            backendData: Self.backendData(vni: lease.vni, mac: lease.vtepMAC),
            publicIP: lease.publicIP.description,
            kubeSubnetManager: "true",
        ]
        if lease.ipv6Subnet != nil, let address = lease.publicIPv6 {
            values[publicIPv6] = address.description
            values[backendV6Data] = Self.backendData(vni: lease.vni, mac: lease.ipv6VtepMAC)
        }
        return values
    }

    /// The lease `node` publishes: its IPv4 pod CIDR (and IPv6 one, when it annotates an IPv6 side)
    /// with the annotated VTEP data; nil while it has no pod CIDR or no annotations from an agent.
    public func lease(of node: Node) -> SubnetLease? {
        let annotations = node.metadata.annotations
        guard let subnet = node.podCIDRs.lazy.compactMap(\.ipv4).first,
              let type = annotations[backendType], !type.isEmpty,
              let ipText = annotations[publicIP], let address = try? IPv4Address(parsing: ipText) else { return nil }
        let data = annotations[backendData].flatMap(Self.parseBackendData)
        var lease = SubnetLease(subnet: subnet, publicIP: address, backendType: type, vni: data?.VNI,
                                vtepMAC: data?.VtepMAC?.lowercased())
        if let v6 = node.podCIDRs.lazy.compactMap(\.ipv6).first,
           let text = annotations[publicIPv6], let address6 = try? IPv6Address(parsing: text) {
            lease.ipv6Subnet = v6
            lease.publicIPv6 = address6
            lease.ipv6VtepMAC = annotations[backendV6Data].flatMap(Self.parseBackendData)?.VtepMAC?.lowercased()
        }
        return lease
    }

    /// flannel's vxlan backend data, `{"VNI":1,"VtepMAC":"…"}`; `null` when there is none (host-gw).
    static func backendData(vni: UInt32?, mac: String?) -> String {
        let fields = [vni.map { "\"VNI\":\($0)" }, mac.map { "\"VtepMAC\":\"\($0)\"" }].compactMap { $0 }
        return fields.isEmpty ? "null" : "{\(fields.joined(separator: ","))}"
    }

    // swiftlint:disable:next identifier_name
    struct BackendData: Decodable { var VNI: UInt32?; var VtepMAC: String? }

    static func parseBackendData(_ text: String) -> BackendData? {
        try? JSONDecoder().decode(BackendData.self, from: Data(text.utf8))
    }
}

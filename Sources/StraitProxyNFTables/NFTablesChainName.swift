import StraitModel
import StraitProxy
import StraitSystem

/// The names of the chains one Service port owns: kind, a short hash, then
/// `namespace/name/protocol/port`, as kube-proxy's nftables mode names them, so that
/// `nft list table ip strait` explains itself (`service-4KQ2ZJ7M-default/web/tcp/http`).
/// The hash keeps names unique and stable however long the readable part is.
enum NFTablesChainName {
    /// Endpoint selection over the cluster pool (kube-proxy's `service-` chain).
    static func cluster(_ name: ServicePortName) -> String { chain("service", name) }
    /// Endpoint selection over this node's endpoints (a Local traffic policy).
    static func local(_ name: ServicePortName) -> String { chain("local", name) }
    /// The external stage: node port, external IPs, load-balancer IPs.
    static func external(_ name: ServicePortName) -> String { chain("external", name) }
    /// `loadBalancerSourceRanges` in front of the external stage.
    static func firewall(_ name: ServicePortName) -> String { chain("firewall", name) }

    static func pool(_ pool: EndpointPool, _ name: ServicePortName) -> String {
        pool == .cluster ? cluster(name) : local(name)
    }

    /// Every kind, to recognise a port's chains in a dump.
    static let kinds = ["service-", "local-", "external-", "firewall-"]

    private static func chain(_ kind: String, _ name: ServicePortName) -> String {
        let port = name.port.isEmpty ? "\(name.protocol.rawValue.lowercased())" : name.port
        let readable = "\(name.namespace)/\(name.name)/\(name.protocol.rawValue.lowercased())/\(port)"
        return "\(kind)-\(hash(name))-\(readable)"
    }

    /// 8 base32 characters of a 64-bit FNV-1a hash of the port's identity: stable across runs
    /// and builds (Swift's own `Hasher` is seeded per process).
    static func hash(_ name: ServicePortName) -> String {
        var hash = FNV1a()
        hash.add("\(name.namespace)/\(name.name)/\(name.port)/\(name.protocol.rawValue)")
        let digest = hash.value
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")
        return String((0..<8).map { alphabet[Int((digest >> (UInt64($0) * 5)) & 31)] })
    }
}

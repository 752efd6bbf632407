import StraitModel

/// What a pod on this node is wired into, resolved from the config and the subnet file: one
/// address pool per family, the cluster networks (routed via the gateway when the pod's default
/// route is elsewhere), the MTU and the bridge.
public struct PodNetwork: Sendable {
    public var pools: [AddressPool]
    public var clusterNetworks: [String]
    public var mtu: Int
    public var bridge: String
    public var isDefaultGateway: Bool
    public var hairpinMode: Bool
    /// What the subnet file says of the overlay's masquerade (`*_IPMASQ`); nil without a file.
    public var overlayMasquerades: Bool?

    /// The config's `subnet` wins (standalone use); otherwise the subnet file the overlay writes.
    public init(config: NetworkConfig) throws(CNIError) {
        var subnets = config.subnetList
        var networks: [String] = []
        var mtu = config.mtu
        var overlayMasquerades: Bool?
        if subnets.isEmpty {
            let file = try SubnetFile.read(config.subnetFilePath)
            subnets = [file.subnet, file.ipv6Subnet].compactMap { $0 }
            networks = [file.network, file.ipv6Network].compactMap { $0 }
            mtu = mtu ?? file.mtu
            overlayMasquerades = file.ipMasq
        }
        guard !subnets.isEmpty else {
            throw CNIError(.invalidNetworkConfig, "no subnet: set subnet in the config or write \(config.subnetFilePath)")
        }
        var pools: [AddressPool] = []
        for subnet in subnets {
            let pool = try AddressPool(subnet: subnet)
            if pools.contains(where: { $0.family == pool.family }) {
                throw CNIError(.invalidNetworkConfig, "two subnets of family \(pool.family): one per family is allowed")
            }
            pools.append(pool)
        }
        self.pools = pools
        self.clusterNetworks = networks
        self.mtu = mtu ?? 1500
        self.bridge = config.bridgeName
        self.isDefaultGateway = config.isDefaultGateway ?? true
        self.hairpinMode = config.hairpinMode ?? true
        self.overlayMasquerades = overlayMasquerades
    }
}

import StraitStore

/// What `strait overlay` was told on its command line. Optional values were not given, so the
/// stored network config (or the default) decides.
public struct OverlayOptions: Sendable, Hashable {
    public var store: String
    public var tls: EtcdTLSFiles?
    public var interface: String?
    public var publicIP: String?
    public var clusterCIDR: String?
    public var subnetLength: Int?
    public var subnetFile: String
    public var backend: BackendType?
    public var vni: UInt32?
    public var vxlanPort: UInt16?
    public var ipMasq: Bool
    public var leaseTTL: Int64

    public static let defaultSubnetFile = "/run/strait/subnet.env"

    public init(store: String = SQLiteStore.defaultPath, tls: EtcdTLSFiles? = nil, interface: String? = nil,
                publicIP: String? = nil, clusterCIDR: String? = nil, subnetLength: Int? = nil,
                subnetFile: String = defaultSubnetFile, backend: BackendType? = nil, vni: UInt32? = nil,
                vxlanPort: UInt16? = nil, ipMasq: Bool = true, leaseTTL: Int64 = SubnetLeaser.defaultTTL) {
        self.store = store
        self.tls = tls
        self.interface = interface
        self.publicIP = publicIP
        self.clusterCIDR = clusterCIDR
        self.subnetLength = subnetLength
        self.subnetFile = subnetFile
        self.backend = backend
        self.vni = vni
        self.vxlanPort = vxlanPort
        self.ipMasq = ipMasq
        self.leaseTTL = leaseTTL
    }
}

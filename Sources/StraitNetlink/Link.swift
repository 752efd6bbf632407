/// A network device to create: its name, kind and the settings it starts with.
public struct LinkSpec: Sendable, Hashable {
    /// The kinds of device Strait creates.
    public enum Kind: Sendable, Hashable {
        /// A veth pair; `peerNamespace` (a name under `/run/netns` or an absolute path) puts the
        /// peer end in another network namespace.
        case veth(peer: String, peerNamespace: String? = nil)
        case bridge
        case vxlan(VXLANSpec)
        case dummy
    }

    public var name: String
    public var kind: Kind
    /// The MTU to create the device with; `nil` keeps the kernel's default.
    public var mtu: UInt32?
    /// The MAC address, as "aa:bb:cc:dd:ee:ff"; `nil` lets the kernel pick one.
    public var mac: String?
    /// Whether the device is created up.
    public var up: Bool
    /// For a veth: the peer end's MTU and MAC ("aa:bb:cc:dd:ee:ff"), set in the same request that
    /// creates the pair; `nil` keeps the kernel's defaults. (Not its state: the kernel refuses to open
    /// a veth end before the pair is complete, ENOTCONN.)
    public var peerMTU: UInt32?
    public var peerMAC: String?

    public init(name: String, kind: Kind, mtu: UInt32? = nil, mac: String? = nil, up: Bool = false) {
        self.name = name
        self.kind = kind
        self.mtu = mtu
        self.mac = mac
        self.up = up
    }

    /// Equivalent: `ip link add NAME type veth peer name PEER [netns NS]`.
    public static func veth(_ name: String, peer: String, peerNamespace: String? = nil) -> LinkSpec {
        LinkSpec(name: name, kind: .veth(peer: peer, peerNamespace: peerNamespace))
    }

    /// Equivalent: `ip link add NAME type bridge`.
    public static func bridge(_ name: String) -> LinkSpec { LinkSpec(name: name, kind: .bridge) }

    /// Equivalent: `ip link add NAME type dummy`.
    public static func dummy(_ name: String) -> LinkSpec { LinkSpec(name: name, kind: .dummy) }

    /// Equivalent: `ip link add NAME type vxlan id VNI …`.
    public static func vxlan(_ name: String, _ vxlan: VXLANSpec, mtu: UInt32? = nil) -> LinkSpec {
        LinkSpec(name: name, kind: .vxlan(vxlan), mtu: mtu)
    }
}

/// The VXLAN settings of a vxlan device (flannel's: a VNI, UDP port 8472 or 4789, the node's own
/// address as `local`, learning off).
public struct VXLANSpec: Sendable, Hashable {
    /// The VXLAN network identifier.
    public var vni: UInt32
    /// The UDP destination port.
    public var port: UInt16
    /// The source address of encapsulated packets ("192.168.1.10"); `nil` lets the kernel choose.
    public var local: String?
    /// The underlay device; `nil` lets routing choose.
    public var device: String?
    /// Whether the device learns remote MACs from received packets.
    public var learning: Bool
    /// Whether packets carry the Group Based Policy extension (`ip link … gbp`).
    public var gbp: Bool

    public init(vni: UInt32, port: UInt16 = 4789, local: String? = nil, device: String? = nil,
                learning: Bool = false, gbp: Bool = false) {
        self.vni = vni
        self.port = port
        self.local = local
        self.device = device
        self.learning = learning
        self.gbp = gbp
    }
}

/// A network device as the kernel reports it.
public struct LinkInfo: Sendable, Hashable {
    public let name: String
    public let index: Int32
    /// "veth", "bridge", "vxlan", "dummy", …; `nil` for devices without a kind (loopback).
    public let kind: String?
    public let mtu: UInt32
    /// "aa:bb:cc:dd:ee:ff"; `nil` when the device has no link-layer address.
    public let mac: String?
    /// Whether the device is administratively up (`IFF_UP`).
    public let up: Bool
    /// The index of the bridge (or other master) the device is enslaved to.
    public let masterIndex: Int32?
    /// The device it is linked to (`IFLA_LINK`): for a veth, its peer's index, in the peer's namespace.
    public let peerIndex: Int32?

    public init(name: String, index: Int32, kind: String?, mtu: UInt32, mac: String?, up: Bool, masterIndex: Int32?,
                peerIndex: Int32? = nil) {
        self.name = name
        self.index = index
        self.kind = kind
        self.mtu = mtu
        self.mac = mac
        self.up = up
        self.masterIndex = masterIndex
        self.peerIndex = peerIndex
    }
}

/// The result of ADD (and the `prevResult` of DEL and CHECK), in the 1.x shape.
/// `encoded(for:)` shapes it for the version the runtime asked for.
public struct CNIResult: Sendable, Hashable, Codable {
    public struct Interface: Sendable, Hashable, Codable {
        public var name: String
        public var mac: String?
        public var mtu: Int?
        /// The pod's namespace path; absent for the host side.
        public var sandbox: String?

        public init(name: String, mac: String?, mtu: Int?, sandbox: String?) {
            self.name = name
            self.mac = mac
            self.mtu = mtu
            self.sandbox = sandbox
        }
    }

    public struct IPConfig: Sendable, Hashable, Codable {
        /// `10.244.1.5/24`: the address with its subnet's prefix length.
        public var address: String
        public var gateway: String?
        /// Index into `interfaces`.
        public var interface: Int?
        /// "4" or "6": present only in results for versions before 1.0.0.
        public var version: String?

        public init(address: String, gateway: String?, interface: Int?) {
            self.address = address
            self.gateway = gateway
            self.interface = interface
        }
    }

    public struct Route: Sendable, Hashable, Codable {
        public var dst: String
        public var gw: String?

        public init(dst: String, gw: String?) {
            self.dst = dst
            self.gw = gw
        }
    }

    public var cniVersion: String
    public var interfaces: [Interface]?
    public var ips: [IPConfig]?
    public var routes: [Route]?
    public var dns: JSONValue?

    public init(cniVersion: String, interfaces: [Interface], ips: [IPConfig], routes: [Route], dns: JSONValue?) {
        self.cniVersion = cniVersion
        self.interfaces = interfaces
        self.ips = ips
        self.routes = routes
        self.dns = dns
    }

    /// This result as the given version prints it: before 1.0.0 each address carries `version`.
    public func shaped(for version: CNIVersion) -> CNIResult {
        var result = self
        result.cniVersion = version.description
        result.ips = ips?.map { ip in
            var ip = ip
            ip.version = version.resultHasAddressVersion ? (ip.address.contains(":") ? "6" : "4") : nil
            return ip
        }
        return result
    }
}

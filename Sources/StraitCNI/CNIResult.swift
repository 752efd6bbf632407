/// The result of ADD (and the `prevResult` of DEL and CHECK), in the 1.x shape.
/// `encoded(for:)` shapes it for the version the runtime asked for.
public struct CNIResult: Sendable, Hashable {
    public struct Interface: Sendable, Hashable {
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

    public struct IPConfig: Sendable, Hashable {
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

    public struct Route: Sendable, Hashable {
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

    /// Reads a result (a `prevResult`): only `cniVersion` is required; unknown members are ignored.
    public init(json value: JSONValue, path: String = "") throws(JSONFieldError) {
        let fields = try JSONFields(value, path: path)
        cniVersion = try fields.string("cniVersion")
        if let elements = try fields.optionalArray("interfaces") {
            var interfaces: [Interface] = []
            for element in elements {
                let fields = try JSONFields(element.value, path: element.path)
                interfaces.append(Interface(name: try fields.string("name"), mac: try fields.optionalString("mac"),
                                            mtu: try fields.optionalInt("mtu"),
                                            sandbox: try fields.optionalString("sandbox")))
            }
            self.interfaces = interfaces
        }
        if let elements = try fields.optionalArray("ips") {
            var ips: [IPConfig] = []
            for element in elements {
                let fields = try JSONFields(element.value, path: element.path)
                var ip = IPConfig(address: try fields.string("address"), gateway: try fields.optionalString("gateway"),
                                  interface: try fields.optionalInt("interface"))
                ip.version = try fields.optionalString("version")
                ips.append(ip)
            }
            self.ips = ips
        }
        if let elements = try fields.optionalArray("routes") {
            var routes: [Route] = []
            for element in elements {
                let fields = try JSONFields(element.value, path: element.path)
                routes.append(Route(dst: try fields.string("dst"), gw: try fields.optionalString("gw")))
            }
            self.routes = routes
        }
        dns = fields.optional("dns")
    }

    /// The result as JSON; absent members are left out.
    public var json: JSONValue {
        var object = JSONObjectBuilder()
        object.set("cniVersion", cniVersion)
        object.set("interfaces", interfaces.map { interfaces in
            JSONValue.array(interfaces.map { interface in
                var object = JSONObjectBuilder()
                object.set("name", interface.name)
                object.set("mac", interface.mac)
                object.set("mtu", interface.mtu)
                object.set("sandbox", interface.sandbox)
                return object.value
            })
        })
        object.set("ips", ips.map { ips in
            JSONValue.array(ips.map { ip in
                var object = JSONObjectBuilder()
                object.set("address", ip.address)
                object.set("gateway", ip.gateway)
                object.set("interface", ip.interface)
                object.set("version", ip.version)
                return object.value
            })
        })
        object.set("routes", routes.map { routes in
            JSONValue.array(routes.map { route in
                var object = JSONObjectBuilder()
                object.set("dst", route.dst)
                object.set("gw", route.gw)
                return object.value
            })
        })
        object.set("dns", dns)
        return object.value
    }
}

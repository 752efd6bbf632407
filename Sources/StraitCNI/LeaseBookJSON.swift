import StraitModel

/// The lease book's JSON, as strait-cni has always written it (keys sorted, pretty-printed):
/// `{"lastReserved": {SUBNET: ADDRESS}, "leases": [{"address", "containerID", "ifname", "subnet",
/// "portMappings"?, "masquerade"?}]}`. Both members are required; an address or subnet that does
/// not parse makes the whole book unreadable, as a torn file would.
extension IPAM.LeaseBook {
    /// Why a lease book could not be read.
    struct ReadError: Error, CustomStringConvertible {
        let description: String
    }

    init(text: String) throws(ReadError) {
        do {
            let fields = try JSONFields(try JSONReader.parse(Array(text.utf8)))
            guard case .object(let reserved) = try fields.required("lastReserved") else {
                throw ReadError(description: "lastReserved is not an object")
            }
            for (subnet, address) in reserved {
                lastReserved[subnet] = try Self.address(address, path: "lastReserved.\(subnet)")
            }
            guard case .array(let elements) = try fields.required("leases") else {
                throw ReadError(description: "leases is not an array")
            }
            for (position, element) in elements.enumerated() {
                leases.append(try Lease(json: element, path: "leases.[\(position)]"))
            }
        } catch let error as ReadError {
            throw error
        } catch {
            throw ReadError(description: "\(error)")
        }
    }

    /// The book as it is written to disk.
    var text: String {
        var reserved: [String: JSONValue] = [:]
        for (subnet, address) in lastReserved { reserved[subnet] = .string(address.description) }
        return JSONWriter.prettyPrinted(.object([
            "lastReserved": .object(reserved),
            "leases": .array(leases.map(\.json)),
        ]))
    }

    static func address(_ value: JSONValue, path: String) throws -> IPAddress {
        let text = try JSONFields.string(value, path: path)
        do { return try IPAddress(parsing: text) } catch {
            throw ReadError(description: "\(path): \(error)")
        }
    }
}

extension Lease {
    init(json value: JSONValue, path: String) throws {
        let fields = try JSONFields(value, path: path)
        containerID = try fields.string("containerID")
        ifname = try fields.string("ifname")
        address = try IPAM.LeaseBook.address(try fields.required("address"), path: fields.path(of: "address"))
        let subnetText = try fields.string("subnet")
        do { subnet = try IPCIDR(parsing: subnetText) } catch {
            throw IPAM.LeaseBook.ReadError(description: "\(fields.path(of: "subnet")): \(error)")
        }
        if let elements = try fields.optionalArray("portMappings") {
            var mappings: [PortMapping] = []
            for element in elements { mappings.append(try PortMapping(json: element.value, path: element.path)) }
            portMappings = mappings
        }
        masquerade = try fields.optionalBool("masquerade")
    }

    var json: JSONValue {
        var object = JSONObjectBuilder()
        object.set("containerID", containerID)
        object.set("ifname", ifname)
        object.set("address", address.description)
        object.set("subnet", subnet.description)
        object.set("portMappings", portMappings.map { JSONValue.array($0.map(\.json)) })
        object.set("masquerade", masquerade)
        return object.value
    }
}

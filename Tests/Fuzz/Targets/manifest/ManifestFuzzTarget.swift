import Foundation
import StraitManifest
import StraitModel

/// `strait apply`'s reading of a manifest: YAML or JSON through `Manifest.decode`, then the checks
/// apply makes (`validationErrors()`, the cluster ranges). Beyond "no crash": every object read
/// reads back equal from the JSON `strait get -o json` prints, from the YAML `-o yaml` prints, and
/// from the JSON the store keeps.
enum FuzzTarget {
    static let ranges = ClusterRanges(serviceCIDRs: [IPCIDR("10.96.0.0/12")!, IPCIDR("fd00:10:96::/112")!])

    static func check(_ input: [UInt8]) throws(FuzzViolation) {
        let objects: [KubeObject]
        do {
            objects = try Manifest.decode(Data(input))
        } catch {
            try require(!error.message.isEmpty, "a refusal without a message")
            return
        }
        for object in objects {
            for problem in object.validationErrors() + ranges.problems(object) {
                try require(!problem.field.isEmpty && !problem.problem.isEmpty, "a problem without a field: \(problem)")
            }
            if object.validationErrors().isEmpty {
                // The proxy writes these into iptables-restore input and nftables comments: what it
                // accepts must be plain DNS names, never quotes, white space or shell characters.
                let names = [object.metadata.name, object.metadata.namespace ?? ""] + portNames(object)
                try require(names.allSatisfy(isPlainName), "valid \(object.reference) carries a name that is not a DNS name: \(names)")
            }
            let stored = try encode { try JSONEncoder().encode(object) }
            try require((try? JSONDecoder().decode(KubeObject.self, from: stored)) == object,
                        "\(object.reference) does not read back from \(String(decoding: stored, as: UTF8.self))")
        }
        guard !objects.isEmpty else { return }
        let json = try encode { try Manifest.json(objects) }
        let fromJSON = try? Manifest.decode(json)
        try require(fromJSON == objects, "objects do not read back from -o json: \(String(decoding: json, as: UTF8.self))")
        let yaml = try encode { try Manifest.yaml(objects) }
        let fromYAML = try? Manifest.decode(yaml)
        try require(fromYAML == objects, "objects do not read back from -o yaml:\n\(yaml)")
    }

    static func portNames(_ object: KubeObject) -> [String] {
        switch object {
        case .service(let service): service.ports.compactMap(\.name)
        case .endpointSlice(let slice): (slice.ports ?? []).compactMap(\.name)
        case .node: []
        }
    }

    static func isPlainName(_ name: String) -> Bool {
        name.utf8.allSatisfy { ("a"..."z").contains(Unicode.Scalar($0)) || ("0"..."9").contains(Unicode.Scalar($0))
            || $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: ".") }
    }

    private static func encode<T>(_ body: () throws -> T) throws(FuzzViolation) -> T {
        do { return try body() } catch { throw FuzzViolation("an object read does not encode: \(error)") }
    }
}

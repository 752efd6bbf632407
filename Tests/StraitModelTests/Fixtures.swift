import Foundation
import StraitManifest
import StraitModel
import Testing

/// Reads the hand-written fixtures (real objects as a cluster prints them).
enum Fixture {
    static func text(_ name: String) throws -> String {
        let url = try #require(Bundle.module.url(forResource: name, withExtension: nil, subdirectory: "Fixtures"))
        return try String(contentsOf: url, encoding: .utf8)
    }

    static func objects(_ name: String) throws -> [KubeObject] {
        try Manifest.decode(text(name))
    }

    static func service(_ name: String) throws -> Service {
        let objects = try objects(name)
        guard objects.count == 1, case .service(let service) = objects[0] else {
            Issue.record("\(name) is not one Service: \(objects)")
            throw CancellationError()
        }
        return service
    }

    static func slice(_ name: String) throws -> EndpointSlice {
        let objects = try objects(name)
        guard objects.count == 1, case .endpointSlice(let slice) = objects[0] else {
            Issue.record("\(name) is not one EndpointSlice: \(objects)")
            throw CancellationError()
        }
        return slice
    }

    static let all = [
        "service-clusterip.json", "service-nodeport.yaml", "service-loadbalancer.json", "service-dualstack.yaml",
        "service-headless.yaml", "service-externalname.json", "endpointslice-web.json", "endpointslice-ipv6.yaml",
        "node.yaml", "list-kubectl.json", "list-services-api.json", "standalone.yaml",
    ]
}

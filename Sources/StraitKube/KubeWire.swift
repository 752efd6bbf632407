import Foundation
import StraitModel

// The API server's wire shapes an informer decodes. Only Foundation and StraitModel here: the kube fuzz
// target (Tests/Fuzz/Targets/kube) compiles this file as it is.

/// One page of a list: `metadata.continue`, `metadata.resourceVersion` and the items, each
/// decoded on its own so one unreadable object does not hide the rest.
struct ListPage<Resource: KubeResource>: Decodable {
    struct Metadata: Decodable {
        var resourceVersion: String?
        var `continue`: String?
    }

    var metadata: Metadata
    var items: [Result<Resource, any Error>]

    enum CodingKeys: String, CodingKey { case metadata, items }

    init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        metadata = try c.decode(Metadata.self, forKey: .metadata)
        var items: [Result<Resource, any Error>] = []
        if c.contains(.items), try !c.decodeNil(forKey: .items) {
            var list = try c.nestedUnkeyedContainer(forKey: .items)
            while !list.isAtEnd {
                let item = try list.superDecoder()
                items.append(Result { try Resource(from: item) })
            }
        }
        self.items = items
    }
}

/// The parts of a watch event every type has: `type`, the object's version, or the `Status` of an ERROR.
struct WatchHeader: Decodable {
    struct Object: Decodable {
        struct Metadata: Decodable { var resourceVersion: String? }
        var metadata: Metadata?
        var code: Int?
        var reason: String?
        var message: String?
    }

    var type: String
    var object: Object?
}

struct WatchObject<Resource: KubeResource>: Decodable {
    var object: Resource
}

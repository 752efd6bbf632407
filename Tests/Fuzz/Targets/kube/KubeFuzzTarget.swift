import Foundation
import StraitModel

/// Kubernetes objects as the API source receives them: a list page and a watch event line, read
/// as Service, EndpointSlice and Node, by StraitKube's wire types (`KubeWire.swift`, compiled here
/// through a link). Beyond "no crash": every object read re-encodes to JSON that reads back equal,
/// and a page keeps one result per item.
enum FuzzTarget {
    static func check(_ input: [UInt8]) throws(FuzzViolation) {
        let data = Data(input)
        try check(data, as: Service.self)
        try check(data, as: EndpointSlice.self)
        try check(data, as: Node.self)
    }

    static func check<Resource: KubeResource>(_ data: Data, as _: Resource.Type) throws(FuzzViolation) {
        let decoder = JSONDecoder()
        if let page = try? decoder.decode(ListPage<Resource>.self, from: data) {
            // JSONSerialization is stricter than JSONDecoder (raw control characters in strings):
            // count the items when both read the page.
            if let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] {
                let items = (object["items"] as? [Any])?.count ?? 0
                try require(page.items.count == items, "a page of \(items) items gave \(page.items.count) results")
            }
            for case .success(let object) in page.items { try roundTrip(object) }
        }
        // What Informer.watch does with one line.
        guard let header = try? decoder.decode(WatchHeader.self, from: data),
              ["ADDED", "MODIFIED", "DELETED"].contains(header.type),
              let event = try? decoder.decode(WatchObject<Resource>.self, from: data) else { return }
        try roundTrip(event.object)
    }

    static func roundTrip<Resource: KubeResource>(_ object: Resource) throws(FuzzViolation) {
        _ = object.validationErrors()
        guard let json = try? JSONEncoder().encode(object) else { throw FuzzViolation("\(object.reference) does not encode") }
        try require((try? JSONDecoder().decode(Resource.self, from: json)) == object,
                    "\(object.reference) does not read back from \(String(decoding: json, as: UTF8.self))")
    }
}

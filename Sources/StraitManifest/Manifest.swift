import Foundation
import StraitModel
import Yams

/// A manifest that could not be read: names the document (from 0, in stream order), the object
/// when it got that far, and what was wrong.
public struct ManifestError: Error, Sendable, Hashable, CustomStringConvertible {
    public var document: Int
    /// `Service default/web`, when the document had a kind and name.
    public var object: String?
    public var message: String

    public init(document: Int, object: String? = nil, message: String) {
        self.document = document
        self.object = object
        self.message = message
    }

    public var description: String {
        "document \(document)" + (object.map { " (\($0))" } ?? "") + ": \(message)"
    }
}

/// Reads and writes Kubernetes manifests: a YAML stream of `---`-separated documents, or JSON
/// (one object or a list, as `kubectl get -o json` prints). JSON is read by the same YAML
/// parser, so one path handles both. Decoding does not validate: call `validate()` on the
/// objects where invalid values must be refused (`strait apply`).
public enum Manifest {
    /// Every object in the text, lists flattened, in order. Empty documents are skipped.
    public static func decode(_ text: String) throws(ManifestError) -> [KubeObject] {
        let documents: [Yams.Node]
        do {
            // Parser.nextRoot throws on a syntax error; compose_all's sequence stops silently.
            let parser = try Parser(yaml: text)
            var nodes: [Yams.Node] = []
            while let node = try parser.nextRoot() { nodes.append(node) }
            documents = nodes
        } catch {
            throw ManifestError(document: 0, message: "not YAML or JSON: \(error)")
        }
        var objects: [KubeObject] = []
        for (index, node) in documents.enumerated() {
            if case .scalar(let scalar) = node, scalar.style == .plain,
               ["", "~", "null", "Null", "NULL"].contains(scalar.string) { continue }
            guard node.mapping != nil else {
                throw ManifestError(document: index, message: "expected an object (a mapping), found \(describe(node))")
            }
            guard let kind = node["kind"]?.string else {
                throw ManifestError(document: index, object: reference(node, kind: nil), message: "has no kind")
            }
            if KubeList.isList(kind: kind) {
                let itemKind = kind == "List" ? nil : String(kind.dropLast(4))
                for (itemIndex, item) in (node["items"]?.sequence ?? []).enumerated() {
                    objects.append(try decodeObject(item, document: index, defaultKind: itemKind,
                                                    path: "items[\(itemIndex)]"))
                }
            } else {
                objects.append(try decodeObject(node, document: index, defaultKind: nil, path: nil))
            }
        }
        return objects
    }

    public static func decode(_ data: Data) throws(ManifestError) -> [KubeObject] {
        guard let text = String(data: data, encoding: .utf8) else {
            throw ManifestError(document: 0, message: "not UTF-8 text")
        }
        return try decode(text)
    }

    private static func decodeObject(_ node: Yams.Node, document: Int, defaultKind: String?,
                                     path: String?) throws(ManifestError) -> KubeObject {
        let kind = node["kind"]?.string ?? defaultKind
        let object = reference(node, kind: kind)
        if let kind, !["Service", "EndpointSlice", "Node"].contains(kind) {
            let version = node["apiVersion"]?.string.map { "\($0) " } ?? ""
            throw ManifestError(document: document, object: object,
                                message: "unsupported kind \(version)\(kind); Strait reads \(KubeObject.supportedKinds)")
        }
        var userInfo: [CodingUserInfoKey: Any] = [:]
        if let defaultKind { userInfo[KubeObject.defaultKindKey] = defaultKind }
        do {
            return try YAMLDecoder().decode(KubeObject.self, from: node, userInfo: userInfo)
        } catch let error as DecodingError {
            throw ManifestError(document: document, object: object, message: describe(error, prefix: path))
        } catch {
            throw ManifestError(document: document, object: object, message: "\(error)")
        }
    }

    /// `Service default/web` from the raw document, as far as it can be read.
    private static func reference(_ node: Yams.Node, kind: String?) -> String? {
        let name = node["metadata"]?["name"]?.string
        guard kind != nil || name != nil else { return nil }
        var text = kind ?? "object"
        if let name {
            let namespace = node["metadata"]?["namespace"]?.string
                ?? (kind == "Node" ? nil : "default")
            text += " " + (namespace.map { "\($0)/" } ?? "") + name
        }
        return text
    }

    private static func describe(_ node: Yams.Node) -> String {
        switch node {
        case .scalar(let scalar): "the scalar \(String(reflecting: scalar.string))"
        case .sequence: "a sequence"
        case .mapping: "a mapping"
        case .alias: "an alias"
        }
    }

    /// `spec.ports[0].port: expected a number` from a decoding error's coding path.
    static func describe(_ error: DecodingError, prefix: String?) -> String {
        func path(_ keys: [any CodingKey]) -> String {
            var text = prefix ?? ""
            for key in keys {
                if let index = key.intValue, key.stringValue.hasPrefix("Index") || key.stringValue == "\(index)" {
                    text += "[\(index)]"
                } else {
                    text += (text.isEmpty ? "" : ".") + key.stringValue
                }
            }
            return text.isEmpty ? "(document)" : text
        }
        switch error {
        case .keyNotFound(let key, let context):
            return "\(path(context.codingPath + [key])): is required"
        case .valueNotFound(let type, let context):
            return "\(path(context.codingPath)): expected \(typeName(type)), found null"
        case .typeMismatch(let type, let context):
            return "\(path(context.codingPath)): expected \(typeName(type))"
        case .dataCorrupted(let context):
            return "\(path(context.codingPath)): \(context.debugDescription)"
        @unknown default:
            return "\(error)"
        }
    }

    private static func typeName(_ type: Any.Type) -> String {
        switch type {
        case is Int.Type: "a number"
        case is String.Type: "a string"
        case is Bool.Type: "true or false"
        default:
            ["Dictionary", "Mapping"].contains(where: "\(type)".contains) ? "a mapping"
                : ["Array", "Sequence"].contains(where: "\(type)".contains) ? "a list" : "\(type)"
        }
    }

    /// The objects as a YAML stream, `---` between documents (`strait get -o yaml`).
    public static func yaml(_ objects: [KubeObject]) throws -> String {
        let encoder = YAMLEncoder()
        return try objects.map { try encoder.encode($0) }.joined(separator: "---\n")
    }

    /// One object as itself, several as a `kind: List` (`strait get -o json`). Pretty-printed.
    public static func json(_ objects: [KubeObject]) throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        if objects.count == 1 { return try encoder.encode(objects[0]) }
        return try encoder.encode(KubeList(items: objects))
    }
}

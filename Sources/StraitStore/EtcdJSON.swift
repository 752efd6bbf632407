import Foundation

/// The JSON shapes of etcd's v3 gateway that `EtcdStore` reads. The gateway writes proto3
/// JSON with the proto field names: bytes as base64, int64 as strings, and fields that
/// hold their zero value left out — so every field here is optional.
enum EtcdJSON {
    /// An int64 written as a JSON string (or, leniently, a number).
    struct Int64Text: Decodable, Hashable {
        var value: Int64

        init(from decoder: any Decoder) throws {
            let container = try decoder.singleValueContainer()
            if let number = try? container.decode(Int64.self) {
                value = number
            } else {
                let text = try container.decode(String.self)
                guard let number = Int64(text) else {
                    throw DecodingError.dataCorruptedError(in: container, debugDescription: "not an int64: \(text)")
                }
                value = number
            }
        }
    }

    struct Header: Decodable {
        var revision: Int64Text?
    }

    struct KV: Decodable {
        var key: String?
        var value: String?
        var create_revision: Int64Text?
        var mod_revision: Int64Text?
        var version: Int64Text?
        var lease: Int64Text?

        var keyValue: KeyValue {
            KeyValue(
                key: String(decoding: base64(key), as: UTF8.self),
                value: base64(value),
                createRevision: create_revision?.value ?? 0,
                modRevision: mod_revision?.value ?? 0,
                version: version?.value ?? 0,
                lease: lease.flatMap { $0.value == 0 ? nil : LeaseID($0.value) })
        }
    }

    struct RangeResponse: Decodable {
        var header: Header?
        var kvs: [KV]?
    }

    struct PutResponse: Decodable {
        var header: Header?
    }

    struct DeleteRangeResponse: Decodable {
        var header: Header?
        var deleted: Int64Text?
    }

    struct TxnResponse: Decodable {
        struct ResponseOp: Decodable {
            var response_range: RangeResponse?
        }
        var header: Header?
        var succeeded: Bool?
        var responses: [ResponseOp]?
    }

    struct LeaseGrantResponse: Decodable {
        var ID: Int64Text?
        var TTL: Int64Text?
        var error: String?
    }

    /// One message of a streaming call: `{"result": …}` or `{"error": …}`.
    struct StreamMessage<Result: Decodable>: Decodable {
        var result: Result?
        var error: StreamError?
    }

    /// A streaming call's error: `{"grpc_code": 14, "message": "…", …}` in etcd 3.4's
    /// gateway, a plain string in some versions.
    struct StreamError: Decodable, CustomStringConvertible {
        var description: String

        init(from decoder: any Decoder) throws {
            if let text = try? decoder.singleValueContainer().decode(String.self) {
                description = text
            } else {
                let body = try ErrorFields(from: decoder)
                description = "\(body.message ?? "unknown error") (gRPC code \(body.grpc_code ?? -1))"
            }
        }

        private struct ErrorFields: Decodable {
            var grpc_code: Int?
            var message: String?
        }
    }

    struct LeaseKeepAliveResponse: Decodable {
        var ID: Int64Text?
        var TTL: Int64Text?
    }

    struct WatchResponse: Decodable {
        struct Event: Decodable {
            /// `"PUT"` (usually omitted: it is the zero value) or `"DELETE"`.
            var type: String?
            var kv: KV?
            var prev_kv: KV?
        }
        var header: Header?
        var created: Bool?
        var canceled: Bool?
        var compact_revision: Int64Text?
        var cancel_reason: String?
        var events: [Event]?
    }

    struct ErrorBody: Decodable {
        var error: String?
        var message: String?
        var code: Int?
    }

    static func decode<T: Decodable>(_ type: T.Type, _ data: Data, operation: String, key: String?) throws -> T {
        do {
            return try JSONDecoder().decode(type, from: data)
        } catch {
            throw StoreError(
                .backend, operation: operation, key: key,
                detail: "unreadable etcd response: \(String(decoding: data.prefix(200), as: UTF8.self))")
        }
    }

    static func base64(_ text: String?) -> Data {
        guard let text else { return Data() }
        return Data(base64Encoded: text) ?? Data()
    }
}

extension String {
    /// The key as etcd's gateway takes it: base64 of the UTF-8 bytes.
    var etcdBase64: String { Data(utf8).base64EncodedString() }
}

extension Data {
    var etcdBase64: String { base64EncodedString() }
}

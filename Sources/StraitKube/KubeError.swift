/// A failure of the Kubernetes client: the operation (`list services`, `load kubeconfig`), the
/// object it concerned (a file, a user, a URL) and what went wrong. HTTP failures keep the status
/// code and the API server's `Status` reason, so callers can tell 410 Gone from 401 Unauthorized.
public struct KubeError: Error, Sendable, Hashable, CustomStringConvertible {
    public enum Code: Sendable, Hashable {
        /// The kubeconfig or in-cluster configuration cannot be used.
        case configuration
        /// The API server answered with a non-success HTTP status (or a watch `ERROR` event).
        case status(Int)
        /// The connection failed or broke.
        case transport
        /// The API server's answer could not be read.
        case decoding
    }

    public var code: Code
    public var operation: String
    public var detail: String

    public init(_ code: Code, operation: String, detail: String) {
        self.code = code
        self.operation = operation
        self.detail = detail
    }

    public var description: String { "\(operation): \(detail)" }

    /// The HTTP status code, for `.status` errors.
    public var statusCode: Int? {
        if case .status(let code) = code { return code }
        return nil
    }

    /// 410 Gone: the requested resourceVersion is older than what the server still has.
    public var isGone: Bool { statusCode == 410 }

    static func configuration(_ operation: String, _ detail: String) -> KubeError {
        KubeError(.configuration, operation: operation, detail: detail)
    }
}

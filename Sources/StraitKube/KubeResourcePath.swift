import StraitModel

/// Where the API serves a kind, cluster-wide: `/api/v1/services`. Equivalent: `kubectl get --raw PATH`.
public struct KubeResourcePath: Sendable, Hashable, CustomStringConvertible {
    public var path: String
    /// `services`, for messages.
    public var plural: String

    public init(path: String, plural: String) {
        self.path = path
        self.plural = plural
    }

    public var description: String { plural }

    public static let services = KubeResourcePath(path: "/api/v1/services", plural: "services")
    public static let endpointSlices = KubeResourcePath(path: "/apis/discovery.k8s.io/v1/endpointslices",
                                                        plural: "endpointslices")
    public static let nodes = KubeResourcePath(path: "/api/v1/nodes", plural: "nodes")
}

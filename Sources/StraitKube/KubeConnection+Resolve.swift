import Foundation

extension KubeConnection {
    /// The connection kube-proxy would use, with `$KUBECONFIG` as one more place to look:
    /// `kubeconfig` (the flag or `clientConnection.kubeconfig`), else `$KUBECONFIG`, else the
    /// in-cluster service account; `master` then replaces the server (alone, it is an
    /// unauthenticated server).
    public static func resolve(kubeconfig: String?, master: String?,
                               inCluster: InCluster = InCluster()) throws(KubeError) -> KubeConnection {
        var connection: KubeConnection?
        if let kubeconfig, !kubeconfig.isEmpty {
            connection = try from(KubeConfig.load(file: kubeconfig), source: kubeconfig)
        } else if let list = inCluster.environment["KUBECONFIG"], !list.isEmpty {
            let paths = list.split(separator: ":").map(String.init)
            connection = try from(KubeConfig.load(files: paths), source: "$KUBECONFIG \(list)")
        } else if inCluster.isAvailable {
            connection = try KubeConnection.inCluster(inCluster)
        }
        if let master, !master.isEmpty {
            if let found = connection { return try found.replacingServer(master) }
            return KubeConnection(server: try parseServer(master, operation: "use --master", what: "--master"),
                                  origin: "--master, no credentials")
        }
        guard let connection else {
            throw .configuration("find the Kubernetes API", "no --kubeconfig, $KUBECONFIG, --master or in-cluster "
                                 + "service account (KUBERNETES_SERVICE_HOST)")
        }
        return connection
    }
}

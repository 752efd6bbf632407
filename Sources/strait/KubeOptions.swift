import ArgumentParser
import Foundation
import Logging
import StraitKube
import StraitProxy
import StraitSources

/// kube-proxy's API-server flags. The proxy reads the Kubernetes API when `--kubeconfig` or
/// `--master` is given (or `clientConnection.kubeconfig` in `--config`), or, without `--store`
/// and `$STRAIT_STORE`, when `$KUBECONFIG` is set or it runs in a pod; otherwise Strait's store.
struct KubeOptions: ParsableArguments {
    @Option(help: "A kubeconfig file: watch the Kubernetes API (its current context) instead of the store.")
    var kubeconfig: String?

    @Option(help: "The API server's address; overrides the kubeconfig's server.")
    var master: String?

    @Option(name: .customLong("kube-api-qps"), help: "Requests per second to the API server (default 5).")
    var qps: Double?

    @Option(name: .customLong("kube-api-burst"), help: "Requests in a burst to the API server (default 10).")
    var burst: Int?

    @Option(name: .customLong("kube-api-content-type"),
            help: "application/json (protobuf is refused: Strait decodes JSON only).")
    var contentType: String?

    /// The source `strait proxy` runs on: a `KubeSource` when the flags, the configuration file or
    /// the environment point at an API server; nil for the store. `storeFlag` is `--store`.
    func source(_ configuration: ProxyConfiguration, storeFlag: String?, log: Logger) throws -> KubeSource? {
        let explicit = kubeconfig != nil || master != nil
        if explicit, let storeFlag {
            throw ValidationError("--store \(storeFlag) and --\(kubeconfig != nil ? "kubeconfig" : "master") name two "
                                  + "sources; give one")
        }
        let environment = ProcessInfo.processInfo.environment
        let fromEnvironment = storeFlag == nil && (environment["STRAIT_STORE"] ?? "").isEmpty
            && (!(environment["KUBECONFIG"] ?? "").isEmpty || KubeConnection.InCluster().isAvailable)
        let configured = storeFlag == nil ? configuration.clientConnection.kubeconfig : nil
        guard explicit || configured != nil || fromEnvironment else { return nil }

        let connection = try KubeConnection.resolve(kubeconfig: kubeconfig ?? configured, master: master)
        let client = try KubeClient(connection: connection, qps: qps ?? configuration.clientConnection.qps ?? 5,
                                    burst: burst ?? configuration.clientConnection.burst ?? 10,
                                    contentType: contentType ?? configuration.clientConnection.contentType)
        return KubeSource(client: client, nodeName: configuration.nodeName, log: log)
    }
}

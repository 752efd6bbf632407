import Foundation
import StraitKube
import StraitModel

/// Leases from the Kubernetes Nodes (flannel's `--kube-subnet-mgr`): this node's subnets are its
/// Node's `spec.podCIDRs` (allocated by kube-controller-manager), its VTEP data is written to the
/// Node's annotations (`NodeAnnotations`) and every other Node's annotations are read, through a
/// Node informer, so peers come and go with the Nodes. The network config is flannel's
/// net-conf.json (`--net-config-path`). Once the node is programmed, its Node's `NetworkUnavailable`
/// condition is set False. Needs RBAC: nodes get/list/watch, nodes/status patch.
public actor KubeLeaseSource: LeaseSource {
    public nonisolated let client: KubeClient
    public nonisolated let nodeName: String
    public nonisolated let netConfigPath: String
    public nonisolated let annotations: NodeAnnotations
    public nonisolated let informerOptions: InformerOptions
    private var config: NetworkConfig?

    public init(client: KubeClient, nodeName: String, netConfigPath: String, annotations: NodeAnnotations,
                informerOptions: InformerOptions = InformerOptions()) {
        self.client = client
        self.nodeName = nodeName
        self.netConfigPath = netConfigPath
        self.annotations = annotations
        self.informerOptions = informerOptions
    }

    public nonisolated var configOrigin: String { netConfigPath }
    private nonisolated var nodePath: String { KubeResourcePath.nodes.path + "/" + nodeName }

    /// Reads `--net-config-path`: flannel's net-conf.json (`{"Network":"10.244.0.0/16","Backend":{"Type":"vxlan"}}`).
    public func start() async throws -> NetworkConfig {
        guard let data = FileManager.default.contents(atPath: netConfigPath) else {
            let reason = FileManager.default.fileExists(atPath: netConfigPath) ? "cannot be read" : "no such file"
            throw OverlayError(.invalidConfig, "--net-config-path \(netConfigPath): \(reason)")
        }
        do {
            let config = try NetworkConfig(json: data)
            self.config = config
            return config
        } catch {
            throw OverlayError(.invalidConfig, "--net-config-path \(netConfigPath): \(error.message)")
        }
    }

    /// This Node. Equivalent: `kubectl get node NAME -o json`.
    func node() async throws -> Node {
        let operation = "get node \(nodeName)"
        let data = try await client.get(nodePath, operation: operation)
        do {
            return try JSONDecoder().decode(Node.self, from: data)
        } catch {
            throw KubeError(.decoding, operation: operation, detail: "not a Node: \(error)")
        }
    }

    public func previousLease(publicIP: IPv4Address) async throws -> SubnetLease? {
        annotations.lease(of: try await node())
    }

    /// A node without pod CIDRs yet: waited for (kube-controller-manager assigns them shortly after
    /// the Node registers), with the reason in the agent's retry message.
    struct NoPodCIDR: Error, CustomStringConvertible {
        var node: String
        var family: String
        var description: String {
            "node \(node) has no \(family) spec.podCIDRs yet (kube-controller-manager --allocate-node-cidrs, or "
                + "kubectl patch node \(node) -p '{\"spec\":{\"podCIDRs\":[…]}}')"
        }
    }

    /// The subnets are the Node's; `previous` does not matter. Publishes the annotations when they
    /// differ from what the Node carries. Equivalent: `kubectl annotate node NAME strait.io/…=… --overwrite`.
    public func acquire(_ template: SubnetLease, preferring previous: IPv4CIDR?) async throws -> HeldLease {
        guard let config else { throw OverlayError(.lease, "the Kubernetes lease source was not started") }
        let node = try await node()
        guard let subnet = node.podCIDRs.lazy.compactMap(\.ipv4).first else {
            throw NoPodCIDR(node: nodeName, family: "IPv4")
        }
        guard config.network.contains(subnet) else {
            throw OverlayError(.invalidConfig, "node \(nodeName)'s podCIDR \(subnet) is outside the Network "
                + "\(config.network) of \(netConfigPath); the cluster's --cluster-cidr and the net-conf must agree")
        }
        var lease = template
        lease.subnet = subnet
        if let ipv6 = config.ipv6 {
            guard let subnet6 = node.podCIDRs.lazy.compactMap(\.ipv6).first else {
                throw NoPodCIDR(node: nodeName, family: "IPv6")
            }
            guard ipv6.network.contains(subnet6) else {
                throw OverlayError(.invalidConfig, "node \(nodeName)'s podCIDR \(subnet6) is outside the "
                    + "IPv6Network \(ipv6.network) of \(netConfigPath)")
            }
            lease.ipv6Subnet = subnet6
        } else {
            lease.ipv6Subnet = nil
            lease.publicIPv6 = nil
            lease.ipv6VtepMAC = nil
        }
        let wanted = annotations.values(for: lease)
        if wanted.contains(where: { node.metadata.annotations[$0.key] != $0.value }) {
            try await patchStatus(["metadata": ["annotations": wanted]], type: .merge,
                                  operation: "annotate node \(nodeName) with its VTEP data")
        }
        return HeldLease(lease: lease, storeLease: nil, holder: "node \(nodeName)'s spec.podCIDRs")
    }

    /// The Node holds the lease for as long as it exists; a deleted Node shows in the watch.
    public func renew(_ held: HeldLease) async throws {}

    /// Every Node's lease through a Node informer; a Node that loses its pod CIDR or annotations, or
    /// is deleted, takes its lease away.
    public nonisolated func events() -> AsyncStream<LeaseEvent> {
        let (stream, continuation) = AsyncStream<LeaseEvent>.makeStream()
        let log = KubeLog(debug: { overlayLog.debug("\($0)") }, info: { overlayLog.info("\($0)") },
                          warning: { overlayLog.warning("\($0)") })
        let informer = Informer<Node>(client: client, resource: .nodes, options: informerOptions, log: log)
        let annotations = annotations
        let task = Task {
            // Which subnet each Node's lease was reported with, to take it away when the Node changes.
            var reported: [String: IPv4CIDR] = [:]
            func update(_ node: Node) {
                let name = node.metadata.name
                let lease = annotations.lease(of: node)
                if let old = reported[name], old != lease?.subnet {
                    continuation.yield(.removed(old))
                    reported[name] = nil
                }
                if let lease {
                    reported[name] = lease.subnet
                    continuation.yield(.set(lease))
                }
            }
            do {
                for try await event in informer.events() {
                    switch event {
                    case .listed(let nodes):
                        reported = [:]
                        var leases: [SubnetLease] = []
                        for node in nodes {
                            guard let lease = annotations.lease(of: node) else { continue }
                            reported[node.metadata.name] = lease.subnet
                            leases.append(lease)
                        }
                        continuation.yield(.listed(leases))
                    case .added(let node), .modified(let node):
                        update(node)
                    case .deleted(let node):
                        if let old = reported.removeValue(forKey: node.metadata.name) {
                            continuation.yield(.removed(old))
                        }
                    }
                }
            } catch {
                // The informer retries on its own and ends only when cancelled.
            }
            continuation.finish()
        }
        continuation.onTermination = { _ in task.cancel() }
        return stream
    }

    /// Sets the Node's `NetworkUnavailable` condition False, as flannel does once it runs (the
    /// scheduler's taint controller then lets pods onto the node). Logged, not fatal, when refused.
    /// Equivalent: `kubectl patch node NAME --subresource=status -p '{"status":{"conditions":[…]}}'`.
    public func nodeProgrammed() async {
        let now = ISO8601DateFormatter().string(from: Date())
        let condition: [String: Any] = [
            "type": "NetworkUnavailable", "status": "False", "reason": "StraitIsUp",
            "message": "strait overlay programmed this node", "lastTransitionTime": now, "lastHeartbeatTime": now,
        ]
        let operation = "set node \(nodeName)'s NetworkUnavailable condition False"
        do {
            try await patchStatus(["status": ["conditions": [condition]]], type: .strategic, operation: operation)
            overlayLog.info("node \(nodeName): NetworkUnavailable is False")
        } catch {
            overlayLog.error("\(error)")
        }
    }

    /// PATCH the Node's status subresource (annotations go there too, as flannel writes them, so
    /// the agent needs only `nodes/status` `patch`).
    private func patchStatus(_ body: [String: Any], type: KubeClient.PatchType, operation: String) async throws {
        let data = try JSONSerialization.data(withJSONObject: body, options: [.sortedKeys])
        try await client.patch(nodePath + "/status", body: data, type: type, operation: operation)
    }

    public func close() async {
        await client.shutdown()
    }
}

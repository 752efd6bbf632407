import StraitModel

/// Where this node's subnet and every other node's come from (flannel's subnet manager): Strait's
/// store (`StoreLeaseSource`, flannel's etcd subnet manager) or the Kubernetes Nodes
/// (`KubeLeaseSource`, flannel's `--kube-subnet-mgr`). The agent asks a source for the network
/// config, its own lease and the others'; it owns the kernel side itself.
public protocol LeaseSource: Sendable {
    /// Where the network config is read, for messages: `/strait/network/config`, `/etc/kube-flannel/net-conf.json`.
    var configOrigin: String { get }

    /// Connects and reads the network config. An `OverlayError` is final (a bad config); any other
    /// error is retried by the agent.
    func start() async throws -> NetworkConfig

    /// This node's lease as an earlier run published it (its VTEP MACs are reused), if any.
    func previousLease(publicIP: IPv4Address) async throws -> SubnetLease?

    /// Takes this node's subnet and publishes `template` (public IP, backend data) for it.
    func acquire(_ template: SubnetLease, preferring previous: IPv4CIDR?) async throws -> HeldLease

    /// Keeps the lease alive; throws when it is lost and must be acquired again.
    func renew(_ held: HeldLease) async throws

    /// Every lease (this node's included): the full set after each (re-)list, then single changes.
    /// Retries its own failures; ends only when cancelled.
    func events() -> AsyncStream<LeaseEvent>

    /// This node's kernel side is programmed (its device, the peers): say so where the source can.
    func nodeProgrammed() async

    func close() async
}

/// What a lease source reports.
public enum LeaseEvent: Sendable, Hashable {
    /// Every lease there is now; any other is gone.
    case listed([SubnetLease])
    /// A lease was created or changed.
    case set(SubnetLease)
    /// The lease of this subnet is gone.
    case removed(IPv4CIDR)
}

import StraitModel

/// Turns remote leases into kernel state (flannel's backend interface, made small): the agent
/// owns the route table and hands a backend one lease at a time to program or unprogram.
public protocol OverlayBackend: Sendable {
    var type: BackendType { get }
    /// The MTU pods get (written to the subnet file).
    var podMTU: Int { get }
    /// Sets up this node's side for its own lease (the VXLAN devices and their addresses). Idempotent.
    func configure(_ own: SubnetLease) throws(OverlayError)
    /// False when this node's side went missing (the device was deleted): the agent configures
    /// again and reprograms every lease.
    func isIntact() -> Bool
    /// Why this backend cannot program `lease`, or nil when it can.
    func refusal(for lease: SubnetLease) -> String?
    /// Programs a remote lease; on failure nothing of it stays.
    func add(_ lease: SubnetLease) throws(OverlayError)
    /// Unprograms a remote lease; entries already gone are fine.
    func remove(_ lease: SubnetLease)
    /// Removes routes into `network` (and, for VXLAN, neighbour and FDB entries) that this backend would
    /// have made but `table` does not hold, left from leases that vanished while the agent was down;
    /// returns what it removed ("route 10.244.5.0/24", …).
    func removeStaleEntries(keeping table: RouteTable, network: IPv4CIDR) -> [String]
}

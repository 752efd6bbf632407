import StraitModel

/// The other nodes' leases, keyed by subnet: what every backend turns into kernel state.
/// A plain value; two of them give the diff a backend applies.
public struct RouteTable: Sendable, Hashable {
    public private(set) var leases: [IPv4CIDR: SubnetLease] = [:]

    public init(_ leases: some Sequence<SubnetLease> = []) {
        for lease in leases { self.leases[lease.subnet] = lease }
    }

    public var isEmpty: Bool { leases.isEmpty }
    public var count: Int { leases.count }
    public subscript(subnet: IPv4CIDR) -> SubnetLease? { leases[subnet] }

    public mutating func set(_ lease: SubnetLease) { leases[lease.subnet] = lease }
    public mutating func remove(_ subnet: IPv4CIDR) { leases[subnet] = nil }

    /// What turns `self` into `new`: a changed lease (new public IP or MAC) is removed and added again.
    public func diff(to new: RouteTable) -> RouteTableDiff {
        var diff = RouteTableDiff()
        for (subnet, old) in leases where new.leases[subnet] != old { diff.removed.append(old) }
        for (subnet, lease) in new.leases where leases[subnet] != lease { diff.added.append(lease) }
        diff.removed.sort { $0.subnet < $1.subnet }
        diff.added.sort { $0.subnet < $1.subnet }
        return diff
    }

    /// The same diff limited to `subnets` (what one lease event touched), without a pass over the
    /// whole table.
    public func diff(to new: RouteTable, for subnets: [IPv4CIDR]) -> RouteTableDiff {
        var diff = RouteTableDiff()
        for subnet in Set(subnets).sorted() where leases[subnet] != new.leases[subnet] {
            if let old = leases[subnet] { diff.removed.append(old) }
            if let lease = new.leases[subnet] { diff.added.append(lease) }
        }
        return diff
    }
}

/// Leases to unprogram, then leases to program.
public struct RouteTableDiff: Sendable, Hashable {
    public var removed: [SubnetLease] = []
    public var added: [SubnetLease] = []
    public init(removed: [SubnetLease] = [], added: [SubnetLease] = []) {
        self.removed = removed
        self.added = added
    }
    public var isEmpty: Bool { removed.isEmpty && added.isEmpty }
}

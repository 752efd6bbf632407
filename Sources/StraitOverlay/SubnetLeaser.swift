import Foundation
import StraitModel
import StraitStore

/// The subnet this node holds: its key in the store, bound to a store lease with a TTL — or, for a
/// reservation an operator wrote without a TTL (flannel's permanent reservation), bound to none.
public struct HeldLease: Sendable, Hashable {
    public var lease: SubnetLease
    public var storeLease: LeaseID?
    /// How the lease is held when not in the store, for messages: "node node-1's spec.podCIDRs".
    public var holder: String?

    public var storeLeaseDescription: String {
        holder ?? storeLease.map { "store lease \($0)" } ?? "a reservation without TTL"
    }
}

/// Acquires and renews this node's subnet lease (flannel's etcd subnet manager):
/// 1. reuse the lease already carrying this node's public IP (a reservation without TTL stays one);
/// 2. else the subnet a previous run used (the subnet file), when free;
/// 3. else a random free subnet among the first 100, created with create-if-absent and retried on conflict.
/// A dual-stack network pairs each IPv4 subnet with the IPv6 subnet of the same index
/// (10.244.5.0/24 with fd00:10:244:5::/64 in a /56), both in the one key flannel writes.
public struct SubnetLeaser: Sendable {
    public static let defaultTTL: Int64 = 24 * 3600
    static let raceRetries = 10

    public let store: any Store
    public let config: NetworkConfig
    /// The lease value to publish (public IP, backend type, VNI and VTEP MAC); its subnet is ignored.
    public let template: SubnetLease
    public let ttl: Int64
    public let layout: KeyLayout

    public init(store: any Store, config: NetworkConfig, template: SubnetLease, ttl: Int64 = defaultTTL,
                layout: KeyLayout = .strait) {
        self.layout = layout
        self.store = store
        self.config = config
        self.template = template
        self.ttl = ttl
    }

    public func acquire(preferring previous: IPv4CIDR?) async throws -> HeldLease {
        for _ in 0..<Self.raceRetries {
            let (items, _) = try await store.list(prefix: layout.subnets)
            var taken: Set<IPv4CIDR> = []
            var takenIPv6: Set<IPv6CIDR> = []
            var mine: (KeyValue, SubnetLease)?
            for item in items {
                guard let lease = SubnetLease(key: item.key, value: item.value) else { continue }
                taken.insert(lease.subnet)
                if let subnet = lease.ipv6Subnet { takenIPv6.insert(subnet) }
                let sameFamilies = (lease.ipv6Subnet != nil) == (config.ipv6 != nil)
                if lease.publicIP == template.publicIP, isUsable(lease.subnet), sameFamilies, mine == nil {
                    mine = (item, lease)
                }
            }
            if let (item, lease) = mine {
                var wanted = template
                wanted.subnet = lease.subnet
                wanted.ipv6Subnet = lease.ipv6Subnet
                let bound: LeaseID?
                if let existing = item.lease {
                    let alive = (try? await store.keepAlive(existing)) != nil
                    bound = alive ? existing : try await store.grantLease(ttl: ttl)
                } else {
                    bound = nil  // a reservation: flannel leaves it without TTL, and so does Strait
                }
                do {
                    try await store.update(wanted.key(in: layout), value: wanted.value, ifRevision: item.modRevision,
                                           lease: bound)
                    return HeldLease(lease: wanted, storeLease: bound)
                } catch let error as StoreError where error.code == .revisionMismatch || error.code == .notFound {
                    continue
                }
            }
            let subnet: IPv4CIDR
            if let previous, isUsable(previous), !taken.contains(previous) {
                subnet = previous
            } else {
                let free = freeSubnets(excluding: taken).filter { subnet in
                    config.ipv6 == nil || ipv6Subnet(pairedWith: subnet).map { !takenIPv6.contains($0) } == true
                }
                guard let pick = free.randomElement() else {
                    throw OverlayError(.lease, "no free /\(config.subnetLength) subnet left in \(config.network) "
                        + "(\(taken.count) leased between \(config.subnetMin) and \(config.subnetMax))")
                }
                subnet = pick
            }
            var wanted = template
            wanted.subnet = subnet
            if config.ipv6 != nil {
                guard let paired = ipv6Subnet(pairedWith: subnet) else {
                    throw OverlayError(.lease, "\"IPv6Network\" has no subnet to pair with \(subnet); make it larger")
                }
                wanted.ipv6Subnet = paired
            }
            let storeLease = try await store.grantLease(ttl: ttl)
            do {
                try await store.create(wanted.key(in: layout), value: wanted.value, lease: storeLease)
                return HeldLease(lease: wanted, storeLease: storeLease)
            } catch let error as StoreError where error.code == .alreadyExists {
                try? await store.revokeLease(storeLease)
                continue
            }
        }
        throw OverlayError(.lease, "lost the race for a subnet \(Self.raceRetries) times in a row")
    }

    /// Restarts the TTL. Throws `StoreError.leaseNotFound` (or `OverlayError.lease` when the key is
    /// gone or no longer ours) when the lease is lost and must be acquired again.
    public func renew(_ held: HeldLease) async throws {
        if let storeLease = held.storeLease { try await store.keepAlive(storeLease) }
        guard let current = try await store.get(held.lease.key(in: layout)),
              let lease = SubnetLease(key: current.key, value: current.value), lease.publicIP == template.publicIP
        else {
            throw OverlayError(.lease, "the lease \(held.lease.key(in: layout)) is gone or taken by another node")
        }
    }

    /// The IPv6 subnet with the same index in the IPv6 network as `subnet` has in the IPv4 network.
    func ipv6Subnet(pairedWith subnet: IPv4CIDR) -> IPv6CIDR? {
        guard let ipv6 = config.ipv6, let offset = config.network.index(of: subnet.network) else { return nil }
        return ipv6.network.subnet(offset >> UInt64(32 - config.subnetLength), prefixLength: ipv6.subnetLength)
    }

    private func isUsable(_ subnet: IPv4CIDR) -> Bool {
        subnet.prefixLength == config.subnetLength && subnet >= config.subnetMin && subnet <= config.subnetMax
            && config.network.contains(subnet)
    }

    /// Up to 100 free subnets from SubnetMin upward, as flannel collects them.
    private func freeSubnets(excluding taken: Set<IPv4CIDR>) -> [IPv4CIDR] {
        var free: [IPv4CIDR] = []
        var candidate: IPv4CIDR? = config.subnetMin
        while let subnet = candidate, subnet <= config.subnetMax, free.count < 100 {
            if !taken.contains(subnet) { free.append(subnet) }
            candidate = subnet.next
        }
        return free
    }
}

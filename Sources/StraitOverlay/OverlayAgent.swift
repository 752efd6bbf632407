import Foundation
import Logging
import StraitModel
import StraitNetlink
import StraitStore

/// `strait overlay` as a service: leases this node's subnet, writes the subnet file, and keeps the
/// backend's kernel state equal to the other nodes' leases in the store.
///
/// One actor owns the mutable state (the held lease, the programmed route table); three tasks feed
/// it: the lease watch (list, then watch from the list's revision; re-list after `.compacted` or a
/// broken stream), the renewal loop, and the device check. Cancelling `run()` stops them and leaves
/// the kernel state and the lease in place, so forwarding continues across a restart.
public actor OverlayAgent {
    public let options: OverlayOptions

    private var store: (any Store)?
    private var config: NetworkConfig?
    private var backend: (any OverlayBackend)?
    private var leaser: SubnetLeaser?
    private var held: HeldLease?
    private var underlay: Underlay?
    /// The other nodes' leases as the store has them.
    private var desired = RouteTable()
    /// What is programmed in the kernel.
    private var applied = RouteTable()
    private var refused: [IPv4CIDR: String] = [:]
    private var statePath: String { OverlayState.path(besideSubnetFile: options.subnetFile) }

    public init(options: OverlayOptions) {
        self.options = options
    }

    /// Runs until cancelled; throws only for what a restart cannot fix (bad config, bad flags).
    public func run() async throws {
        try await start()
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await self.watchLeases() }
            group.addTask { try await self.renewLease() }
            group.addTask { try await self.checkDevice() }
            defer { group.cancelAll() }
            while try await group.next() != nil, !Task.isCancelled {}
        }
        await store?.close()
        overlayLog.info("stopped; kernel state and lease \(held?.lease.key ?? "-") stay for the next start")
    }

    // MARK: Start

    private func start() async throws {
        let netlink: NetlinkSocket
        do { netlink = try NetlinkSocket() } catch { throw OverlayError(.kernel, "cannot open netlink: \(error)") }
        let underlay = try Underlay.discover(interface: options.interface, publicIP: options.publicIP, netlink: netlink)
        self.underlay = underlay
        let store = try await openStore(url: options.store, tls: options.tls)
        self.store = store
        let config = try await retrying("read the network config") {
            try await NetworkConfigSource(store: store, options: self.options).load()
        }
        for prefix in underlay.prefixes where prefix.masked.overlaps(config.network) {
            throw OverlayError(.invalidConfig, "the network \(config.network) in \(OverlayKeys.config) overlaps the underlay \(prefix.masked) "
                + "on \(underlay.interface) (this node is \(underlay.publicIP)); pods and nodes need separate ranges")
        }
        self.config = config
        let summary = "network \(config.network), /\(config.subnetLength) subnets, "
            + "backend \(config.backend.type.rawValue), underlay \(underlay.interface) \(underlay.publicIP) mtu \(underlay.mtu)"
        overlayLog.info("\(summary)")

        let state = OverlayState.load(statePath) ?? OverlayState()
        let backend: any OverlayBackend
        var template = SubnetLease(subnet: config.network, publicIP: underlay.publicIP,
                                   backendType: config.backend.type.rawValue)
        switch config.backend.type {
        case .vxlan:
            let mac = try await retrying("find the VTEP MAC") {
                try await self.vtepMAC(state: state, store: store, netlink: netlink, vni: config.backend.vni)
            }
            template.vni = config.backend.vni
            template.vtepMAC = mac
            backend = VXLANBackend(vni: config.backend.vni, port: config.backend.port, vtepMAC: mac,
                                   underlay: underlay, netlink: netlink)
        case .hostGateway:
            backend = try HostGatewayBackend(underlay: underlay, netlink: netlink)
        }
        self.backend = backend

        let masquerade = try Masquerade(network: config.network)
        if options.ipMasq { try masquerade.enable() } else { masquerade.disable() }

        let leaser = SubnetLeaser(store: store, config: config, template: template, ttl: options.leaseTTL)
        self.leaser = leaser
        let previous = SubnetFileWriter(path: options.subnetFile).previousSubnet()
            ?? state.subnet.flatMap { try? IPv4CIDR(networkParsing: $0) }
        let held = try await retrying("lease a subnet") { try await leaser.acquire(preferring: previous) }
        try establish(held)
        // Entries programmed by an earlier run: the watch's first listing removes the vanished ones.
        applied = RouteTable(state.programmed)
    }

    /// Configures the backend for the held subnet and publishes it in the subnet file.
    private func establish(_ held: HeldLease) throws(OverlayError) {
        guard let backend, let config else { return }
        let changed = self.held?.lease.subnet != held.lease.subnet
        self.held = held
        try backend.configure(subnet: held.lease.subnet)
        try SubnetFileWriter(path: options.subnetFile).write(network: config.network, subnet: held.lease.subnet,
                                                             mtu: backend.podMTU, ipMasq: options.ipMasq)
        saveState()
        if changed {
            overlayLog.info("leased \(held.lease.subnet) (store lease \(held.storeLease)); wrote \(options.subnetFile)")
        }
    }

    /// The VTEP MAC of an earlier run (state file, this node's lease, the device), or a new random one.
    private func vtepMAC(state: OverlayState, store: any Store, netlink: NetlinkSocket, vni: UInt32) async throws -> String {
        if let mac = state.vtepMAC { return mac }
        let (items, _) = try await store.list(prefix: OverlayKeys.subnets)
        if let mine = items.compactMap({ SubnetLease(key: $0.key, value: $0.value) })
            .first(where: { $0.publicIP == underlay?.publicIP }), let mac = mine.vtepMAC {
            return mac
        }
        if let link = try? netlink.link(named: VXLANBackend.deviceName(vni: vni)), let mac = link.mac { return mac }
        var bytes = (0..<6).map { _ in UInt8.random(in: 0...255) }
        bytes[0] = (bytes[0] & 0xfe) | 0x02  // unicast, locally administered
        return bytes.map { String(format: "%02x", $0) }.joined(separator: ":")
    }

    // MARK: Route table

    /// Makes the kernel match `desired`: removals first, then additions; a failed addition stays
    /// out of `applied` and is retried by the next check.
    private func reconcile() {
        guard let backend else { return }
        let diff = applied.diff(to: desired)
        guard !diff.isEmpty else { return }
        for lease in diff.removed {
            backend.remove(lease)
            applied.remove(lease.subnet)
            overlayLog.info("removed \(lease.subnet) via \(lease.publicIP)")
        }
        for lease in diff.added {
            if let reason = backend.refusal(for: lease) {
                if refused[lease.subnet] != reason { overlayLog.error("\(reason)") }
                refused[lease.subnet] = reason
                continue
            }
            refused[lease.subnet] = nil
            do {
                try backend.add(lease)
                applied.set(lease)
                overlayLog.info("added \(lease.subnet) via \(lease.publicIP) \(lease.vtepMAC ?? "")")
            } catch {
                overlayLog.error("\(error); will retry")
            }
        }
        saveState()
    }

    private func saveState() {
        var state = OverlayState.load(statePath) ?? OverlayState()
        if let backend = backend as? VXLANBackend { state.vtepMAC = backend.vtepMAC }
        state.subnet = held?.lease.subnet.description
        state.peers = OverlayState.peers(applied)
        do { try state.save(statePath) } catch { overlayLog.warning("\(error)") }
    }

    /// A full listing: the whole table is replaced, and routes left by vanished leases are removed.
    private func replaceAll(_ items: [KeyValue]) async {
        var table = RouteTable()
        var ownSeen = false
        for item in items {
            guard let lease = SubnetLease(key: item.key, value: item.value) else {
                if item.key.hasPrefix(OverlayKeys.subnets) { overlayLog.warning("ignoring malformed lease \(item.key)") }
                continue
            }
            if lease.subnet == held?.lease.subnet {
                ownSeen = lease.publicIP == held?.lease.publicIP
                continue
            }
            if lease.publicIP == held?.lease.publicIP { continue }
            table.set(lease)
        }
        desired = table
        reconcile()
        if let backend, let config {
            for route in backend.removeStaleRoutes(keeping: applied, network: config.network) {
                overlayLog.info("removed stale route \(route)")
            }
        }
        if !ownSeen { await reacquire("the lease \(held?.lease.key ?? "") is missing from the store") }
    }

    private func handle(_ event: WatchEvent) async {
        switch event {
        case .put(let item):
            guard let lease = SubnetLease(key: item.key, value: item.value) else { return }
            if lease.subnet == held?.lease.subnet {
                if lease.publicIP != held?.lease.publicIP { await reacquire("\(item.key) was taken by \(lease.publicIP)") }
                return
            }
            if lease.publicIP == held?.lease.publicIP { return }
            desired.set(lease)
            reconcile()
        case .delete(let key, _, _):
            guard let subnet = OverlayKeys.subnet(fromKey: key) else { return }
            if subnet == held?.lease.subnet {
                await reacquire("\(key) was deleted")
                return
            }
            desired.remove(subnet)
            reconcile()
        case .compacted:
            return
        }
    }

    /// The lease is lost (deleted, expired, taken): lease again, the same subnet when still free.
    private func reacquire(_ why: String) async {
        guard let leaser, let current = held else { return }
        overlayLog.warning("\(why); leasing again")
        do {
            let renewed = try await leaser.acquire(preferring: current.lease.subnet)
            if renewed.lease.subnet != current.lease.subnet {
                overlayLog.warning("\(current.lease.subnet) is no longer free; moving to \(renewed.lease.subnet)")
                desired.remove(renewed.lease.subnet)
                reconcile()
            }
            try establish(renewed)
        } catch {
            overlayLog.error("cannot lease again: \(error); retrying")
        }
    }

    // MARK: Loops

    private nonisolated func watchLeases() async throws {
        var delay = Duration.milliseconds(200)
        while !Task.isCancelled {
            do {
                guard let store = await store else { return }
                let (items, revision) = try await store.list(prefix: OverlayKeys.subnets)
                await replaceAll(items)
                delay = .milliseconds(200)
                for try await event in store.watch(prefix: OverlayKeys.subnets, afterRevision: revision) {
                    if case .compacted(let at) = event {
                        overlayLog.info("watch history compacted at revision \(at); listing again")
                        break
                    }
                    await handle(event)
                }
            } catch {
                if Task.isCancelled { return }
                overlayLog.warning("lease watch: \(error); listing again in \(delay)")
                try await Task.sleep(for: delay)
                delay = min(delay * 2, .seconds(5))
            }
        }
    }

    private nonisolated func renewLease() async throws {
        let interval = Duration.seconds(max(1, min(options.leaseTTL / 4, 3600)))
        while true {
            try await Task.sleep(for: interval)
            guard let leaser = await leaser, let held = await held else { continue }
            do {
                try await leaser.renew(held)
            } catch let error as StoreError where error.code != .leaseNotFound {
                overlayLog.warning("renewing \(held.lease.key): \(error); retrying")
                try await Task.sleep(for: .seconds(2))
                continue
            } catch {
                await reacquire("renewing \(held.lease.key): \(error)")
            }
        }
    }

    /// Recreates the device when someone deleted it, and every 10 s re-programs every entry
    /// (replace operations, so nothing changes when all is in place).
    private nonisolated func checkDevice() async throws {
        var ticks = 0
        while true {
            try await Task.sleep(for: .seconds(1))
            ticks += 1
            await verify(full: ticks % 10 == 0)
        }
    }

    private func verify(full: Bool) {
        guard let backend, let held else { return }
        if !backend.isIntact() {
            overlayLog.warning("the overlay device is gone; recreating it and its entries")
            do { try establish(held) } catch {
                overlayLog.error("\(error)")
                return
            }
            applied = RouteTable()
        } else if full {
            for lease in applied.leases.values {
                do { try backend.add(lease) } catch {
                    overlayLog.error("\(error)")
                    applied.remove(lease.subnet)
                }
            }
        }
        reconcile()
    }

    /// Retries `body` while the store is unreachable; overlay errors (bad config) end the agent.
    private func retrying<T: Sendable>(_ what: String, _ body: @Sendable () async throws -> T) async throws -> T {
        var delay = Duration.milliseconds(250)
        while true {
            do { return try await body() } catch let error as OverlayError { throw error } catch {
                try Task.checkCancellation()
                overlayLog.warning("cannot \(what): \(error); retrying in \(delay)")
                try await Task.sleep(for: delay)
                delay = min(delay * 2, .seconds(5))
            }
        }
    }
}

import Foundation
import Logging
import StraitModel
import StraitNetlink
import StraitStore

/// `strait overlay` as a service: leases this node's subnet, writes the subnet file, and keeps the
/// backend's kernel state equal to the other nodes' leases, wherever they come from (a
/// `LeaseSource`: the store, or the Kubernetes Nodes).
///
/// One actor owns the mutable state (the held lease, the programmed route table); three tasks feed
/// it: the source's lease events (a full list, then changes), the renewal loop, and the device
/// check. Cancelling `run()` stops them and leaves the kernel state and the lease in place, so
/// forwarding continues across a restart.
///
/// A lease event costs this node only the kernel entries of the lease it names: the state file that
/// records the programmed peers is written by the device check's next tick (at most once a second),
/// not per event, since every node of a cluster handles every event at the same moment.
public actor OverlayAgent {
    public let options: OverlayOptions
    public nonisolated let leases: any LeaseSource

    private var config: NetworkConfig?
    private var backend: (any OverlayBackend)?
    private var held: HeldLease?
    /// This node's lease value (public IP, backend data) before a subnet is chosen.
    private var template: SubnetLease?
    /// The source was told this node is programmed (once per run).
    private var announced = false
    private var underlay: Underlay?
    /// The other nodes' leases as the lease source has them.
    private var desired = RouteTable()
    /// What is programmed in the kernel.
    private var applied = RouteTable()
    private var refused: [IPv4CIDR: String] = [:]
    /// What the state file holds, or will once `stateChanged` is written.
    private var state = OverlayState()
    /// `applied` moved since the state file was last written.
    private var stateChanged = false
    private var netlink: NetlinkSocket?
    private var health: HealthServer?
    private var statePath: String { OverlayState.path(besideSubnetFile: options.subnetFile) }
    private nonisolated var layout: KeyLayout { options.layout }

    /// `leases` nil: the store `options` names.
    public init(options: OverlayOptions, leases: (any LeaseSource)? = nil) {
        self.options = options
        self.leases = leases ?? StoreLeaseSource(options: options)
    }

    /// Runs until cancelled; throws only for what a restart cannot fix (bad config, bad flags).
    public func run() async throws {
        try await start()
        defer { writeStateIfChanged() }
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await self.watchLeases() }
            group.addTask { try await self.renewLease() }
            group.addTask { try await self.checkDevice() }
            defer { group.cancelAll() }
            while try await group.next() != nil, !Task.isCancelled {}
        }
        await leases.close()
        let what = held.map { "\($0.lease.subnet) (\($0.storeLeaseDescription))" } ?? "-"
        overlayLog.info("stopped; kernel state and lease \(what) stay for the next start")
    }

    // MARK: Start

    private func start() async throws {
        try options.validate()
        if options.healthzPort != 0 {
            health = try HealthServer(address: options.healthzIP, port: options.healthzPort)
        }
        let netlink: NetlinkSocket
        do { netlink = try NetlinkSocket() } catch { throw OverlayError(.kernel, "cannot open netlink: \(error)") }
        self.netlink = netlink
        let underlay = try Underlay.discover(options, netlink: netlink)
        self.underlay = underlay
        let leases = self.leases
        let config = try await retrying("read the network config") { try await leases.start() }
        for prefix in underlay.prefixes where prefix.masked.overlaps(config.network) {
            throw OverlayError(.invalidConfig, "the network \(config.network) in \(leases.configOrigin) overlaps the "
                + "underlay \(prefix.masked) on \(underlay.interface) (this node is \(underlay.publicIP)); "
                + "pods and nodes need separate ranges")
        }
        self.config = config
        let summary = "network \(config.network) from \(leases.configOrigin), "
            + "backend \(config.backend.type.rawValue), underlay \(underlay.interface) \(underlay.publicIP) mtu \(underlay.mtu)"
        overlayLog.info("\(summary)")

        let state = OverlayState.load(statePath) ?? OverlayState()
        self.state = state
        let publicIP = underlay.publicIP
        let previousLease = try await retrying("find this node's earlier lease") {
            try await leases.previousLease(publicIP: publicIP)
        }
        let backend: any OverlayBackend
        var template = SubnetLease(subnet: config.network, publicIP: underlay.publicIP,
                                   backendType: config.backend.type.rawValue)
        switch config.backend.type {
        case .vxlan:
            let device = layout.deviceName(vni: config.backend.vni)
            let mac = vtepMAC(state.vtepMAC ?? previousLease?.vtepMAC, netlink: netlink, device: device)
            template.vni = config.backend.vni
            template.vtepMAC = mac
            var ipv6Side: VXLANBackend.IPv6Side?
            if config.ipv6 != nil {
                let publicIPv6 = try self.publicIPv6(underlay)
                let device6 = layout.deviceName(vni: config.backend.vni, ipv6: true)
                let mac6 = vtepMAC(state.ipv6VtepMAC ?? previousLease?.ipv6VtepMAC, netlink: netlink, device: device6)
                template.publicIPv6 = publicIPv6
                template.ipv6VtepMAC = mac6
                ipv6Side = VXLANBackend.IPv6Side(device: device6, vtepMAC: mac6, publicIP: publicIPv6)
            }
            backend = VXLANBackend(device: device, options: config.backend, vtepMAC: mac, underlay: underlay,
                                   ipv6: ipv6Side, netlink: netlink)
        case .hostGateway:
            if config.ipv6 != nil {
                throw OverlayError(.invalidConfig, "\"EnableIPv6\" with backend host-gw is not supported; use vxlan "
                    + "(\(leases.configOrigin))")
            }
            backend = try HostGatewayBackend(underlay: underlay, netlink: netlink)
        }
        self.backend = backend

        let masquerade = try Masquerade(network: config.network, ipv6: config.ipv6?.network)
        if options.ipMasq { try masquerade.enable() } else { masquerade.disable() }
        let forward = ForwardRules(ipv4: config.network.description, ipv6: config.ipv6?.network.description)
        if options.forwardRules { try forward.enable() } else { forward.disable() }

        self.template = template
        let previous = SubnetFileWriter(path: options.subnetFile).previousSubnet()
            ?? state.subnet.flatMap { try? IPv4CIDR(networkParsing: $0) }
        let wanted = template
        let held = try await retrying("lease a subnet") { try await leases.acquire(wanted, preferring: previous) }
        try establish(held)
        // Entries programmed by an earlier run: the watch's first listing removes the vanished ones.
        applied = RouteTable(state.programmed)
    }

    /// Configures the backend for the held subnet and publishes it in the subnet file.
    private func establish(_ held: HeldLease) throws(OverlayError) {
        guard let backend, let config else { return }
        let previous = self.held?.lease.subnet
        let changed = previous != held.lease.subnet
        self.held = held
        try backend.configure(held.lease)
        if options.blackholeRoute { try blackhole(held.lease.subnet, replacing: changed ? previous : nil) }
        var file = SubnetFile(network: config.network, subnet: held.lease.subnet, mtu: backend.podMTU,
                              ipMasq: options.ipMasq)
        if let ipv6 = config.ipv6, let subnet = held.lease.ipv6Subnet {
            file.ipv6Network = ipv6.network.description
            file.ipv6Subnet = "\(subnet.firstUsable)/\(subnet.prefixLength)"
        }
        try SubnetFileWriter(path: options.subnetFile, naming: options.effectiveSubnetFileNaming).write(file)
        saveState()
        if changed {
            overlayLog.info("leased \(held.lease.subnet) (\(held.storeLeaseDescription)); wrote \(options.subnetFile)")
        }
    }

    /// `--ip-blackhole-route`: packets to this node's subnet are dropped here, not sent along the
    /// default route, while the bridge holds no address for it. A high metric keeps the bridge's own
    /// route (metric 0) in front once pods exist.
    /// Equivalent: `ip route replace blackhole 10.244.1.0/24 metric 4096`.
    private func blackhole(_ subnet: IPv4CIDR, replacing old: IPv4CIDR?) throws(OverlayError) {
        guard let netlink else { return }
        if let old { try? netlink.deleteRoute(RouteSpec(destination: old.description, blackhole: true, metric: 4096)) }
        let route = RouteSpec(destination: subnet.description, blackhole: true, metric: 4096)
        do { try netlink.replaceRoute(route) } catch {
            throw OverlayError(.kernel, "cannot add the blackhole route for \(subnet): \(error)")
        }
    }

    /// This node's IPv6 address for a dual-stack network: `--public-ipv6`, else the underlay's first.
    private func publicIPv6(_ underlay: Underlay) throws(OverlayError) -> IPv6Address {
        if let text = options.publicIPv6 {
            do { return try IPv6Address(parsing: text) } catch {
                throw OverlayError(.underlay, "--public-ipv6: \(error)")
            }
        }
        guard let address = underlay.ipv6Addresses.first else {
            throw OverlayError(.underlay, "\"EnableIPv6\" is set in \(layout.config) but \(underlay.interface) "
                + "has no global IPv6 address; add one or pass --public-ipv6")
        }
        return address
    }

    /// The VTEP MAC of an earlier run (state file, else this node's earlier lease: `saved`), else the
    /// device's, else a new random one. A node taken over from flannel finds its MAC in its lease
    /// (and on flannel's device).
    private func vtepMAC(_ saved: String?, netlink: NetlinkSocket, device: String) -> String {
        if let saved { return saved }
        if let link = try? netlink.link(named: device), let mac = link.mac { return mac }
        var bytes = (0..<6).map { _ in UInt8.random(in: 0...255) }
        bytes[0] = (bytes[0] & 0xfe) | 0x02  // unicast, locally administered
        return bytes.map { String(format: "%02x", $0) }.joined(separator: ":")
    }

    // MARK: Route table

    /// Makes the kernel match `desired` (for `subnets` only, when given: what one event touched):
    /// removals first, then additions; a failed addition stays out of `applied` and is retried by
    /// the next check.
    private func reconcile(_ subnets: [IPv4CIDR]? = nil) {
        guard let backend else { return }
        let diff = subnets.map { applied.diff(to: desired, for: $0) } ?? applied.diff(to: desired)
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
        stateChanged = true
    }

    /// Writes the state file now: this node's VTEP MACs, subnet and programmed peers.
    private func saveState() {
        if let backend = backend as? VXLANBackend {
            state.vtepMAC = backend.vtepMAC
            state.ipv6VtepMAC = backend.ipv6?.vtepMAC
        }
        state.subnet = held?.lease.subnet.description
        state.peers = OverlayState.peers(applied)
        stateChanged = false
        do { try state.save(statePath) } catch {
            stateChanged = true  // the next tick tries again
            overlayLog.warning("\(error)")
        }
    }

    /// The peers programmed since the last write reach the state file. A crash before this loses at
    /// most a second of them from the file: the next start's listing programs every live lease again,
    /// and removes the routes, neighbour and FDB entries of leases gone meanwhile (`removeStaleEntries`).
    private func writeStateIfChanged() {
        if stateChanged { saveState() }
    }

    /// A full listing: the whole table is replaced, and routes left by vanished leases are removed.
    private func replaceAll(_ leases: [SubnetLease]) async {
        var table = RouteTable()
        var ownSeen = false
        for lease in leases {
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
            for entry in backend.removeStaleEntries(keeping: applied, network: config.network) {
                overlayLog.info("removed stale \(entry)")
            }
        }
        if !ownSeen {
            await reacquire("this node's lease \(held.map { "\($0.lease.subnet)" } ?? "") is missing from the listing")
        }
        await setReady(held != nil && backend?.isIntact() == true)
    }

    private func handle(_ event: LeaseEvent) async {
        switch event {
        case .listed(let leases):
            await replaceAll(leases)
        case .set(let lease):
            if lease.subnet == held?.lease.subnet {
                if lease.publicIP != held?.lease.publicIP { await reacquire("\(lease.subnet) was taken by \(lease.publicIP)") }
                return
            }
            if lease.publicIP == held?.lease.publicIP { return }
            desired.set(lease)
            reconcile([lease.subnet])
        case .removed(let subnet):
            if subnet == held?.lease.subnet {
                await reacquire("the lease of \(subnet) was deleted")
                return
            }
            desired.remove(subnet)
            reconcile([subnet])
        }
    }

    /// Health follows the kernel state; the first time the node is programmed the source hears of it
    /// (the Kubernetes source clears the Node's `NetworkUnavailable` condition).
    private func setReady(_ ready: Bool) async {
        health?.set(ready: ready)
        if ready && !announced {
            announced = true
            await leases.nodeProgrammed()
        }
    }

    /// The lease is lost (deleted, expired, taken): lease again, the same subnet when still free.
    private func reacquire(_ why: String) async {
        guard let template, let current = held else { return }
        overlayLog.warning("\(why); leasing again")
        do {
            let renewed = try await leases.acquire(template, preferring: current.lease.subnet)
            if renewed.lease.subnet != current.lease.subnet {
                overlayLog.warning("\(current.lease.subnet) is no longer free; moving to \(renewed.lease.subnet)")
                desired.remove(renewed.lease.subnet)
                reconcile([renewed.lease.subnet])
            }
            try establish(renewed)
        } catch {
            overlayLog.error("cannot lease again: \(error); retrying")
        }
    }

    // MARK: Loops

    private nonisolated func watchLeases() async throws {
        for await event in leases.events() {
            await handle(event)
        }
    }

    private nonisolated func renewLease() async throws {
        let interval = options.renewInterval
        while true {
            try await Task.sleep(for: interval)
            guard let held = await held else { continue }
            do {
                try await leases.renew(held)
            } catch let error as StoreError where error.code != .leaseNotFound {
                overlayLog.warning("renewing \(held.lease.key(in: options.layout)): \(error); retrying")
                try await Task.sleep(for: .seconds(2))
                continue
            } catch {
                await reacquire("renewing \(held.lease.key(in: options.layout)): \(error)")
            }
        }
    }

    /// Recreates the device when someone deleted it, re-programs a tenth of the entries each second
    /// (replace operations, so nothing changes when all is in place), and writes the state file when
    /// peers changed since the last tick. Every entry is re-programmed every 10 s, and a lease event
    /// never waits behind all of them at once.
    private nonisolated func checkDevice() async throws {
        var ticks = 0
        while true {
            try await Task.sleep(for: .seconds(1))
            ticks += 1
            await verify(slice: ticks % Self.slices)
        }
    }

    static let slices = 10

    /// Which tick's slice re-programs `subnet`: its index in the network, so neighbouring subnets
    /// fall in different slices.
    static func slice(of subnet: IPv4CIDR) -> Int {
        Int((subnet.network.rawValue >> UInt32(32 - subnet.prefixLength)) % UInt32(slices))
    }

    private func verify(slice: Int) async {
        guard let backend, let held else { return }
        if !backend.isIntact() {
            overlayLog.warning("the overlay device is gone; recreating it and its entries")
            await setReady(false)
            do { try establish(held) } catch {
                overlayLog.error("\(error)")
                return
            }
            applied = RouteTable()
        } else {
            for lease in applied.leases.values where Self.slice(of: lease.subnet) == slice {
                do { try backend.add(lease) } catch {
                    overlayLog.error("\(error)")
                    applied.remove(lease.subnet)
                }
            }
        }
        reconcile()
        writeStateIfChanged()
        await setReady(backend.isIntact())
    }

    /// Retries `body` while the store is unreachable; overlay errors (bad config) and a damaged store
    /// file (which waiting cannot mend) end the agent.
    private func retrying<T: Sendable>(_ what: String, _ body: @Sendable () async throws -> T) async throws -> T {
        var delay = Duration.milliseconds(250)
        while true {
            do { return try await body() } catch let error as OverlayError { throw error } catch let error as StoreError
                where error.code == .corrupt { throw error } catch {
                try Task.checkCancellation()
                overlayLog.warning("cannot \(what): \(error); retrying in \(delay)")
                try await Task.sleep(for: delay)
                delay = min(delay * 2, .seconds(5))
            }
        }
    }
}

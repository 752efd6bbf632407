#if canImport(Glibc)
import Glibc
#endif
import StraitModel
import StraitNetlink
import StraitNFT
import StraitProxy

/// The IPVS mode's settings (kube-proxy's `ipvs` configuration section).
public struct IPVSSettings: Sendable, Hashable {
    /// The schedulers `--ipvs-scheduler` accepts.
    public static let schedulers = ["rr", "wrr", "lc", "sh", "mh"]

    /// The scheduler of every virtual service: rr (kube-proxy's default), wrr, lc, sh, mh.
    public var scheduler: String
    /// `--ipvs-strict-arp`: the node answers ARP only for addresses on the asking interface
    /// (`arp_ignore=1`, `arp_announce=2`), so it does not answer for the service addresses.
    public var strictARP: Bool
    /// `--ipvs-tcp-timeout`, `--ipvs-tcpfin-timeout`, `--ipvs-udp-timeout`: set at every full sync
    /// when any is not 0 (a 0 leaves that one as it is).
    public var timeouts: IPVSTimeouts
    public var options: ProxyOptions
    /// Tests: program this named network namespace instead of the caller's.
    public var namespace: String?

    public init(scheduler: String = "rr", strictARP: Bool = false, timeouts: IPVSTimeouts = IPVSTimeouts(),
                options: ProxyOptions = ProxyOptions(), namespace: String? = nil) {
        self.scheduler = scheduler
        self.strictARP = strictARP
        self.timeouts = timeouts
        self.options = options
        self.namespace = namespace
    }
}

/// What one sync did, for logs and tests.
public struct IPVSSyncSummary: Sendable, Hashable {
    public var full: Bool
    /// IPVS requests sent (only the differences).
    public var requests: Int
    /// Real servers kept at weight 0 because connections still use them.
    public var draining: Int
    public var addressesAdded: Int
    public var addressesDeleted: Int
    public var rewroteRules: Bool
    /// Where the sync's time went.
    public var phases = IPVSSyncPhases()
}

/// The IPVS mode for one family: a virtual service per service address (IPVS over generic netlink),
/// every service address on the dummy device `kube-ipvs0`, and the helper rules in `strait-ipvs`.
///
/// A partial sync sends only the differences from what the last sync programmed. A full sync (at
/// start, on the periodic resync, after a failure) dumps the kernel's services and real servers and
/// repairs what differs, also what `ipvsadm` changed by hand.
///
/// Graceful termination: a real server that leaves its service while connections (active or
/// inactive) still use it stays, at weight 0 (no new connections), and is deleted at the first
/// later sync that finds it unused.
public actor IPVSBackend: ProxyBackend {
    public nonisolated let mode = ProxyMode.ipvs
    /// The dummy device holding every service address, named as kube-proxy names it.
    public static let device = "kube-ipvs0"

    public nonisolated let family: IPFamily
    public nonisolated let settings: IPVSSettings
    private let ipvs: any IPVSKernel
    private let links: NetlinkSocket
    private let nft: any NFTKernel

    /// Every port's share of what the kernel holds since the last successful sync; nil before it or
    /// after a failure (the next sync is then a full one).
    private var shares: [ServicePortName: IPVSPortShare]?
    /// Ports with real servers draining at weight 0: looked at again by every sync until they are unused.
    private var drainingPorts: Set<ServicePortName> = []
    /// The node addresses the shares' node ports were made for.
    private var sharesNodeAddresses: [IPAddress] = []
    private var deviceAddresses: Set<String> = []
    private var addressUsers = UseCounts<String>()
    private var hairpinUsers = UseCounts<Element>()
    public private(set) var lastSync: IPVSSyncSummary?

    /// Connects to IPVS, rtnetlink and nftables. Throws a `NetlinkError` with code `.familyNotFound`
    /// when the kernel has no IPVS.
    public init(family: IPFamily, settings: IPVSSettings) throws {
        let nft = if let namespace = settings.namespace { try NFTConnection(namespace: namespace) }
            else { try NFTConnection() }
        try self.init(family: family, settings: settings, ipvs: IPVSConnection(namespace: settings.namespace),
                      nft: nft)
    }

    /// Programs `ipvs` and `nft` (a kernel's, or `FakeIPVSKernel` and `FakeNFTKernel` in tests and
    /// host-side measurements) and the device in the namespace of `settings` through rtnetlink.
    public init(family: IPFamily, settings: IPVSSettings, ipvs: any IPVSKernel, nft: any NFTKernel) throws {
        self.family = family
        self.settings = settings
        self.ipvs = ipvs
        self.nft = nft
        links = try NetlinkSocket(.route, namespace: settings.namespace)
    }

    /// A full sync at start, on the periodic resync and after a failure; otherwise a partial sync of
    /// the ports that changed (and of those still draining).
    ///
    /// The node's addresses (where node ports answer) are read at each full sync, and a partial sync
    /// uses those: reading them dumps every address of the node, the thousands of service addresses
    /// on `kube-ipvs0` included, where a one-endpoint change otherwise sends three requests. A node
    /// address added meanwhile gets its node ports at the next full sync (`--sync-period`).
    public func sync(from old: ServiceTable?, to new: ServiceTable) async throws {
        do {
            if let old, shares != nil {
                try partialSync(from: old, to: new, nodeAddresses: sharesNodeAddresses)
            } else {
                try fullSync(new)
            }
        } catch {
            shares = nil
            throw error
        }
    }

    private func share(_ entry: ServicePortEntry, _ nodeAddresses: [IPAddress]) -> IPVSPortShare? {
        entry.plan(for: family).map {
            IPVSPortShare(plan: $0, family: family, scheduler: settings.scheduler, nodeAddresses: nodeAddresses)
        }
    }

    // MARK: Full sync

    /// Dumps the kernel's services and real servers and repairs every difference from the plans,
    /// also what `ipvsadm` changed by hand; rewrites the helper table whole.
    private func fullSync(_ table: ServiceTable) throws {
        var phases = IPVSSyncPhases()
        try phases.measure(\.prepare) { try prepareHost() }
        let nodeAddresses = try phases.measure(\.dump) { try nodePortAddresses() }
        var next: [ServicePortName: IPVSPortShare] = [:]
        var desired = IPVSVirtualServers()
        var owners: [IPVSVirtualAddress: ServicePortName] = [:]
        var users = UseCounts<String>()
        var hairpin = UseCounts<Element>()
        phases.measure(\.translate) {
            for entry in table.sortedEntries { next[entry.name] = share(entry, nodeAddresses) }
            for (name, share) in next {
                desired.merge(share.wanted)
                for key in share.wanted.services.keys { owners[key] = name }
                _ = users.update(removing: [], adding: share.addresses)
                _ = hairpin.update(removing: [], adding: share.rules.hairpin)
            }
        }
        let wantedAddresses = users.values

        var current = IPVSVirtualServers()
        var counts = ConnectionCounts()
        try phases.measure(\.dump) {
            deviceAddresses = try addressesOnDevice()
            // Ours: services of this family at a service address (on the device or wanted) or a node address.
            let ours = deviceAddresses.union(wantedAddresses).union(nodeAddresses.map(\.description))
            for service in try ipvs.services() where service.isIPv6 == (family == .ipv6)
                && ours.contains(canonical(service.address)) {
                let infos = try ipvs.destinations(of: service)
                counts.record(service, infos)
                current.insert(service, infos.map(\.destination))
            }
        }
        var draining: Set<ServicePortName> = []
        let idle = try phases.measure(\.drain) { try drain(from: current, to: desired, counts: &counts) }
        for (key, destination) in idle {
            desired.insert(destination, at: key)
            if let owner = owners[key] {
                next[owner]?.programmed.insert(destination, at: key)
                draining.insert(owner)
            }
        }

        let added = try phases.measure(\.addresses) { try addAddresses(wantedAddresses.subtracting(deviceAddresses)) }
        let changes = phases.measure(\.compare) { IPVSChanges(from: current, to: desired) }
        try phases.measure(\.requests) { try changes.apply(to: ipvs) }
        let deleted = try phases.measure(\.addresses) {
            try deleteAddresses(deviceAddresses.subtracting(wantedAddresses))
        }

        let transaction = phases.measure(\.buildRules) {
            IPVSHelperRules(family: family, ports: next.keys.sorted().map { next[$0]!.rules }).transaction
        }
        try phases.measure(\.commitRules) { try nft.commit(transaction) }

        shares = next
        drainingPorts = draining
        sharesNodeAddresses = nodeAddresses
        addressUsers = users
        hairpinUsers = hairpin
        lastSync = IPVSSyncSummary(full: true, requests: changes.count, draining: idle.count,
                                   addressesAdded: added, addressesDeleted: deleted, rewroteRules: true,
                                   phases: phases)
    }

    // MARK: Partial sync

    /// Sends only the differences of the ports that changed since `old` and of the ports still
    /// draining, from what the last sync programmed; rewrites the helper rules only when a changed
    /// port's rules changed, and otherwise adds and deletes hairpin elements alone.
    ///
    /// Works on the backend's own state in place (a copy of thousands of shares and use counts
    /// would cost more than the change itself); a failure leaves `shares` nil, so the next sync is full.
    private func partialSync(from old: ServiceTable, to new: ServiceTable, nodeAddresses: [IPAddress]) throws {
        var phases = IPVSSyncPhases()
        // Taken out, so the dictionary is uniquely referenced and edited in place.
        var next = shares ?? [:]
        shares = nil
        var touched: [ServicePortName: IPVSPortShare?] = [:]
        phases.measure(\.translate) {
            let (upserted, removed) = new.changedPorts(since: old)
            for name in removed { touched[name] = .some(nil) }
            for entry in upserted { touched[entry.name] = .some(share(entry, nodeAddresses)) }
            for name in drainingPorts where touched[name] == nil { touched[name] = .some(next[name]) }
        }

        var changes = IPVSChanges()
        var draining = drainingPorts.subtracting(touched.keys)
        var counts = ConnectionCounts()
        var rulesChanged = false
        var drainingServers = 0
        var addedAddresses: Set<String> = [], deletedAddresses: Set<String> = []
        var addedHairpin: [Element] = [], deletedHairpin: [Element] = []
        for name in touched.keys.sorted() {
            let before = next[name]
            var after = touched[name] ?? nil
            let current = before?.programmed ?? IPVSVirtualServers()
            var desired = after?.wanted ?? IPVSVirtualServers()
            let idle = try phases.measure(\.drain) { try drain(from: current, to: desired, counts: &counts) }
            for (key, destination) in idle { desired.insert(destination, at: key) }
            if !idle.isEmpty { draining.insert(name) }
            drainingServers += idle.count
            after?.programmed = desired
            phases.measure(\.compare) { changes.append(IPVSChanges(from: current, to: desired)) }

            let addresses = addressUsers.update(removing: before?.addresses ?? [], adding: after?.addresses ?? [])
            addedAddresses.formUnion(addresses.first)
            deletedAddresses.formUnion(addresses.last)
            let elements = hairpinUsers.update(removing: before?.rules.hairpin ?? [], adding: after?.rules.hairpin ?? [])
            addedHairpin += elements.first
            deletedHairpin += elements.last
            let rulesBefore = (before?.rules.marks ?? [], before?.rules.guards ?? [])
            if rulesBefore != (after?.rules.marks ?? [], after?.rules.guards ?? []) { rulesChanged = true }
            next[name] = after
        }
        // An address that one port gave up and another took in the same sync stays.
        let stay = addedAddresses.intersection(deletedAddresses)
        let added = try phases.measure(\.addresses) {
            try addAddresses(addedAddresses.subtracting(stay).subtracting(deviceAddresses))
        }
        try phases.measure(\.requests) { try changes.apply(to: ipvs) }
        let deleted = try phases.measure(\.addresses) {
            try deleteAddresses(deletedAddresses.subtracting(stay).intersection(deviceAddresses))
        }

        let transaction = phases.measure(\.buildRules) {
            if rulesChanged {
                return IPVSHelperRules(family: family, ports: next.keys.sorted().map { next[$0]!.rules }).transaction
            }
            let set = IPVSHelperRules.hairpinSet(IPVSHelperRules.table(family))
            var transaction = Transaction()
            let kept = Set(addedHairpin).intersection(deletedHairpin)
            let gone = deletedHairpin.filter { !kept.contains($0) }, new = addedHairpin.filter { !kept.contains($0) }
            if !gone.isEmpty { transaction.delete(gone, from: set) }
            if !new.isEmpty { transaction.add(new, to: set) }
            return transaction
        }
        if !transaction.isEmpty { try phases.measure(\.commitRules) { try nft.commit(transaction) } }

        shares = next
        drainingPorts = draining
        lastSync = IPVSSyncSummary(full: false, requests: changes.count, draining: drainingServers,
                                   addressesAdded: added, addressesDeleted: deleted, rewroteRules: rulesChanged,
                                   phases: phases)
    }

    // MARK: Shared steps

    /// The real servers that leave a service of `desired` while connections (active or inactive)
    /// still use them, at weight 0: they stay, taking no new connections, until a later sync finds
    /// them unused. Counts are read for the services that lose a real server only.
    private func drain(from current: IPVSVirtualServers, to desired: IPVSVirtualServers,
                       counts: inout ConnectionCounts) throws -> [(IPVSVirtualAddress, IPVSDestination)] {
        var idle: [(IPVSVirtualAddress, IPVSDestination)] = []
        for (key, service) in desired.services {
            let wanted = desired.destinations[key] ?? [:]
            let leaving = (current.destinations[key] ?? [:]).filter { wanted[$0.key] == nil }
            guard !leaving.isEmpty else { continue }
            if !counts.has(key) { counts.record(service, try ipvs.destinations(of: service)) }
            for (realKey, destination) in leaving where counts.inUse(key, realKey) {
                var drained = destination
                drained.weight = 0
                idle.append((key, drained))
            }
        }
        return idle
    }

    /// Adds `addresses` to the device, in order; returns how many. Addresses go before their virtual
    /// services, so a new service answers as soon as IPVS has it.
    private func addAddresses(_ addresses: Set<String>) throws -> Int {
        guard !addresses.isEmpty else { return 0 }
        let index = try links.link(named: Self.device).index
        for address in addresses.sorted() {
            try links.addAddress(address, to: Self.device, index: index, skipDAD: family == .ipv6)
            deviceAddresses.insert(address)
        }
        return addresses.count
    }

    /// Deletes `addresses` from the device, after their virtual services; returns how many.
    private func deleteAddresses(_ addresses: Set<String>) throws -> Int {
        guard !addresses.isEmpty else { return 0 }
        let index = try links.link(named: Self.device).index
        for address in addresses.sorted() {
            try links.deleteAddress(address, from: Self.device, index: index)
            deviceAddresses.remove(address)
        }
        return addresses.count
    }

    /// The device (created when missing, and up), IPVS's connection tracking (so the helper table's
    /// masquerade sees forwarded packets), the IPVS timeouts when any is set and, with
    /// `--ipvs-strict-arp`, ARP answered only for an interface's own addresses.
    /// Equivalent: `ip link add kube-ipvs0 type dummy; ip link set kube-ipvs0 up;
    /// sysctl net.ipv4.vs.conntrack=1 [net.ipv4.conf.all.arp_ignore=1 net.ipv4.conf.all.arp_announce=2];
    /// ipvsadm --set TCP TCPFIN UDP`.
    private func prepareHost() throws {
        if !settings.timeouts.isEmpty { try ipvs.setTimeouts(settings.timeouts) }
        if (try? links.link(named: Self.device)) == nil {
            do { try links.addLink(.dummy(Self.device)) } catch {
                // The other family's backend may have made it meanwhile.
                guard (try? links.link(named: Self.device)) != nil else { throw error }
            }
        }
        try links.setLink(Self.device, up: true)
        try ipvs.enableConnectionTracking()
        guard settings.strictARP else { return }
        for (key, value) in [("net/ipv4/conf/all/arp_ignore", "1"), ("net/ipv4/conf/all/arp_announce", "2")] {
            if let namespace = settings.namespace {
                try NetworkNamespace.run(named: namespace) { try writeSysctl(key, value) }
            } else {
                try writeSysctl(key, value)
            }
        }
    }

    /// This family's service addresses on the device, as `addAddress` takes them (no prefix); not the
    /// link-local address the kernel gives the device itself.
    private func addressesOnDevice() throws -> Set<String> {
        guard (try? links.link(named: Self.device)) != nil else { return [] }
        return Set(try links.addresses(of: Self.device).filter { $0.scope == 0 }.map { canonical(String($0.address.split(separator: "/")[0])) }
            .filter { IPAddress($0)?.family == family })
    }

    /// The addresses node ports answer on: this family's global addresses of every device but the
    /// dummy one, inside `--nodeport-addresses` when given.
    private func nodePortAddresses() throws -> [IPAddress] {
        let deviceIndex = (try? links.link(named: Self.device))?.index
        let ranges = settings.options.nodePortRanges(family)
        let all = try links.addresses().filter { $0.linkIndex != deviceIndex && $0.scope == 0 }
            .compactMap { IPAddress(String($0.address.split(separator: "/")[0])) }
            .filter { address in address.family == family && (ranges.isEmpty || ranges.contains { $0.contains(address) }) }
        return Array(Set(all)).sorted()
    }

    /// Removes this family's virtual services at local addresses, the helper table, this family's
    /// addresses on the device, and the device once no other family's service address is left on
    /// it (the other family's backend cleans up after this one). Absent pieces are fine.
    public func cleanup() async throws {
        let local = Set(try links.addresses().map { canonical(String($0.address.split(separator: "/")[0])) })
        for service in try ipvs.services() where service.isIPv6 == (family == .ipv6) {
            if local.contains(canonical(service.address)) { try ipvs.deleteService(service) }
        }
        let table = IPVSHelperRules.table(family)
        if try nft.tables(table.family).contains(where: { $0.name == table.name }) {
            var transaction = Transaction()
            transaction.delete(table)
            try nft.commit(transaction)
        }
        if (try? links.link(named: Self.device)) != nil {
            for address in try addressesOnDevice() { try links.deleteAddress(address, from: Self.device) }
            // Link-local addresses (scope 253) come with the device; only service addresses keep it.
            if try links.addresses(of: Self.device).allSatisfy({ $0.scope != 0 }) {
                do { try links.deleteLink(named: Self.device) } catch {
                    guard (try? links.link(named: Self.device)) == nil else { throw error }
                }
            }
        }
        shares = nil
        drainingPorts = []
        deviceAddresses = []
        addressUsers = UseCounts()
        hairpinUsers = UseCounts()
    }
}

/// Connection counts of real servers, read once per virtual service and sync.
private struct ConnectionCounts {
    private var byService: [IPVSVirtualAddress: [IPVSRealAddress: IPVSDestinationInfo]] = [:]

    func has(_ key: IPVSVirtualAddress) -> Bool { byService[key] != nil }

    mutating func record(_ service: IPVSService, _ infos: [IPVSDestinationInfo]) {
        byService[IPVSVirtualAddress(service)] = Dictionary(infos.map { (IPVSRealAddress($0.destination), $0) }) {
            first, _ in first
        }
    }

    /// Whether connections (active or inactive) still use the real server.
    func inUse(_ key: IPVSVirtualAddress, _ real: IPVSRealAddress) -> Bool {
        guard let info = byService[key]?[real] else { return false }
        return UInt64(info.activeConnections) + UInt64(info.inactiveConnections) > 0
    }
}

/// An address in one spelling, so the kernel's and the plan's compare equal.
private func canonical(_ address: String) -> String { IPAddress(address)?.description ?? address }

/// Writes one `/proc/sys` value in the calling thread's network namespace.
private func writeSysctl(_ key: String, _ value: String) throws {
    let path = "/proc/sys/" + key
    let fd = open(path, O_WRONLY)
    guard fd >= 0 else { throw IPVSBackendError(operation: "open", object: path, errno: errno) }
    defer { close(fd) }
    let written = value.withCString { write(fd, $0, strlen($0)) }
    guard written >= 0 else { throw IPVSBackendError(operation: "write \(value) to", object: path, errno: errno) }
}

/// A host setting the IPVS mode could not make.
public struct IPVSBackendError: Error, CustomStringConvertible {
    public var operation: String
    public var object: String
    public var errno: Int32
    public var description: String { "IPVS mode: cannot \(operation) \(object): \(String(cString: strerror(errno)))" }
}

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
    private let ipvs: IPVSConnection
    private let links: NetlinkSocket
    private let nft: NFTConnection

    /// What the kernel holds since the last successful sync (draining real servers included); nil
    /// before it or after a failure.
    private var programmed: IPVSVirtualServers?
    private var deviceAddresses: Set<String> = []
    private var helperRules: IPVSHelperRules?
    public private(set) var lastSync: IPVSSyncSummary?

    /// Connects to IPVS, rtnetlink and nftables. Throws a `NetlinkError` with code `.familyNotFound`
    /// when the kernel has no IPVS.
    public init(family: IPFamily, settings: IPVSSettings) throws {
        self.family = family
        self.settings = settings
        ipvs = try IPVSConnection(namespace: settings.namespace)
        links = try NetlinkSocket(.route, namespace: settings.namespace)
        if let namespace = settings.namespace {
            nft = try NFTConnection(namespace: namespace)
        } else {
            nft = try NFTConnection()
        }
    }

    public func sync(from old: ServiceTable?, to new: ServiceTable) async throws {
        do {
            try syncKernel(full: old == nil || programmed == nil, new)
        } catch {
            programmed = nil
            helperRules = nil
            throw error
        }
    }

    private func syncKernel(full: Bool, _ table: ServiceTable) throws {
        let plans = table.sortedEntries.compactMap { $0.plan(for: family) }
        if full { try prepareHost() }
        let nodeAddresses = try nodePortAddresses()
        var desired = IPVSVirtualServers(plans: plans, scheduler: settings.scheduler, nodeAddresses: nodeAddresses)
        let wantedAddresses = Set(plans.flatMap { $0.clusterIPs + $0.externalIPs + $0.loadBalancerIPs }
            .map(\.description))
        if full { deviceAddresses = try addressesOnDevice() }

        // Connection counts, read only for services that lose a real server.
        var counts: [IPVSVirtualAddress: [IPVSRealAddress: IPVSDestinationInfo]] = [:]
        func record(_ service: IPVSService, _ infos: [IPVSDestinationInfo]) {
            counts[IPVSVirtualAddress(service)] = Dictionary(infos.map { (IPVSRealAddress($0.destination), $0) }) {
                first, _ in first
            }
        }
        let current: IPVSVirtualServers
        if full {
            // Ours: services of this family at a service address (on the device or wanted) or a node address.
            let ours = deviceAddresses.union(wantedAddresses).union(nodeAddresses.map(\.description))
            let services = try ipvs.services().filter {
                $0.isIPv6 == (family == .ipv6) && ours.contains(canonical($0.address))
            }
            var dumped = IPVSVirtualServers()
            for service in services {
                let infos = try ipvs.destinations(of: service)
                record(service, infos)
                dumped.insert(service, infos.map(\.destination))
            }
            current = dumped
        } else {
            current = programmed ?? IPVSVirtualServers()
        }

        var draining = 0
        for (key, service) in desired.services {
            let wanted = desired.destinations[key] ?? [:]
            let leaving = (current.destinations[key] ?? [:]).filter { wanted[$0.key] == nil }
            guard !leaving.isEmpty else { continue }
            if counts[key] == nil { record(service, try ipvs.destinations(of: service)) }
            for (realKey, destination) in leaving {
                guard let info = counts[key]?[realKey],
                      UInt64(info.activeConnections) + UInt64(info.inactiveConnections) > 0 else { continue }
                var idle = destination
                idle.weight = 0
                desired.insert(idle, at: key)
                draining += 1
            }
        }

        // Addresses first, so a new service answers as soon as IPVS has it.
        let added = wantedAddresses.subtracting(deviceAddresses).sorted()
        for address in added {
            try links.addAddress(address, to: Self.device, skipDAD: family == .ipv6)
            deviceAddresses.insert(address)
        }
        let changes = IPVSChanges(from: current, to: desired)
        try changes.apply(to: ipvs)
        programmed = desired
        let deleted = deviceAddresses.subtracting(wantedAddresses).sorted()
        for address in deleted {
            try links.deleteAddress(address, from: Self.device)
            deviceAddresses.remove(address)
        }

        let rules = IPVSHelperRules(family: family, plans: plans, nodeAddresses: nodeAddresses)
        let rewrite = full || rules != helperRules
        if rewrite {
            try nft.commit(rules.transaction)
            helperRules = rules
        }
        lastSync = IPVSSyncSummary(full: full, requests: changes.count, draining: draining,
                                   addressesAdded: added.count, addressesDeleted: deleted.count, rewroteRules: rewrite)
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
        var sysctls = [("net/ipv4/vs/conntrack", "1")]
        if settings.strictARP { sysctls += [("net/ipv4/conf/all/arp_ignore", "1"), ("net/ipv4/conf/all/arp_announce", "2")] }
        for (key, value) in sysctls {
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
        programmed = nil
        helperRules = nil
        deviceAddresses = []
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

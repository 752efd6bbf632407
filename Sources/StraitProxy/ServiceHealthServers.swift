import Logging
import NIOConcurrencyHelpers
import NIOCore
import StraitModel
#if canImport(Glibc)
import Glibc
#endif

/// kube-proxy's service health server (`pkg/proxy/healthcheck/service_health.go`): for every
/// `externalTrafficPolicy: Local` Service with a `healthCheckNodePort`, an HTTP server on that port
/// that a cloud load balancer polls to learn whether this node has endpoints of the Service. It
/// answers 200 while the node has local ready endpoints and the proxy is healthy, 503 otherwise,
/// with kube-proxy's JSON body, on any path.
///
/// Driven by the sync loop: after each successful sync `update(_:)` opens the ports of new
/// Services, closes those of Services that went (or changed port) and refreshes the counts.
/// A port that cannot be bound is logged and retried at the next update; the others keep serving.
/// The servers listen on every address (`[::]`, which takes IPv4 too, else `0.0.0.0`), or, with
/// `--nodeport-addresses`, on the node's addresses inside those ranges, as kube-proxy binds them.
public actor ServiceHealthServers {
    /// The hosts each health-check port is bound on.
    public nonisolated let hosts: [String]
    private let health: ProxyHealth
    private let log: Logger
    private let nodeName: String
    private let localEndpoints = NIOLockedValueBox<[NamespacedName: Int]>([:])
    private var open: [NamespacedName: Instance] = [:]

    private struct Instance {
        var port: UInt16
        var servers: [ProxyHTTPServer]
    }

    /// `nodePortAddresses` empty: every address; else the entries of `localAddresses` (the node's
    /// addresses, loopback included, as `ip -o addr show` lists them) inside those ranges.
    public init(nodePortAddresses: [IPCIDR], localAddresses: [IPAddress] = NodeAddresses.local(includingLoopback: true),
                nodeName: String, health: ProxyHealth, log: Logger) {
        var hosts = ["::"]
        if !nodePortAddresses.isEmpty {
            let matching = localAddresses.filter { address in nodePortAddresses.contains { $0.contains(address) } }
            if matching.isEmpty {
                let ranges = nodePortAddresses.map(\.description)
                log.error("""
                    no node address is inside --nodeport-addresses \(ranges); \
                    health check node ports listen on every address
                    """)
            } else {
                hosts = matching.map(\.description)
            }
        }
        self.hosts = hosts
        self.nodeName = nodeName
        self.health = health
        self.log = log
    }

    /// The ports currently served, by Service (`namespace/name`).
    public var ports: [String: UInt16] {
        Dictionary(uniqueKeysWithValues: open.map { ($0.key.description, $0.value.port) })
    }

    /// Makes the servers match `table`: kube-proxy's `SyncServices` and `SyncEndpoints` in one.
    public func update(_ table: ServiceTable) async {
        var wanted: [NamespacedName: UInt16] = [:]
        var counts: [NamespacedName: Set<ProxyEndpoint.Key>] = [:]
        for entry in table.ports.values {
            guard entry.externalTrafficPolicyLocal, let port = entry.healthCheckNodePort else { continue }
            let name = NamespacedName(entry.name.namespace, entry.name.name)
            wanted[name] = port
            // kube-proxy counts distinct ready local ip:port pairs over all the Service's ports.
            for endpoint in entry.allEndpoints where endpoint.isLocal && endpoint.isReady {
                counts[name, default: []].insert(ProxyEndpoint.Key(address: endpoint.address, port: endpoint.port))
            }
        }
        localEndpoints.withLockedValue { $0 = counts.mapValues(\.count) }

        for (name, instance) in open where wanted[name] != instance.port {
            log.info("closing health check node port \(instance.port) of \(name)")
            await close(instance)
            open[name] = nil
        }
        for (name, port) in wanted.sorted(by: { $0.key.description < $1.key.description }) where open[name] == nil {
            if let instance = await listen(name, port) {
                log.info("health check node port \(port) of \(name) on \(hosts.joined(separator: ", "))")
                open[name] = instance
            }
        }
    }

    /// Closes every server.
    public func stop() async {
        for instance in open.values { await close(instance) }
        open = [:]
    }

    private func listen(_ name: NamespacedName, _ port: UInt16) async -> Instance? {
        var servers: [ProxyHTTPServer] = []
        for host in hosts {
            var server = makeServer(name, host: host, port: port)
            do {
                do {
                    try await server.start()
                } catch let error as BindError where host == "::" && !Self.isAddressInUse(error) {
                    // No IPv6 on this node: listen on IPv4 only.
                    server = makeServer(name, host: "0.0.0.0", port: port)
                    try await server.start()
                }
                servers.append(server)
            } catch {
                log.error("node \(nodeName) failed to start health check node port \(port) of \(name): \(error)")
                await close(Instance(port: port, servers: servers))
                return nil
            }
        }
        return Instance(port: port, servers: servers)
    }

    private func makeServer(_ name: NamespacedName, host: String, port: UInt16) -> ProxyHTTPServer {
        let counts = localEndpoints
        let health = self.health
        return ProxyHTTPServer(name: "health check node port of \(name)",
                               address: BindAddress(host: host, port: Int(port))) { _, _ in
            let count = counts.withLockedValue { $0[name] } ?? 0
            let healthy = health.status().healthy
            return HTTPAnswer(status: count > 0 && healthy ? .ok : .serviceUnavailable,
                              contentType: "application/json",
                              body: Self.json(name, localEndpoints: count, proxyHealthy: healthy))
        }
    }

    private func close(_ instance: Instance) async {
        for server in instance.servers { await server.stop() }
    }

    private static func isAddressInUse(_ error: BindError) -> Bool {
        (error.underlying as? IOError)?.errnoCode == EADDRINUSE
    }

    /// kube-proxy's body, tab-indented as it prints it.
    static func json(_ name: NamespacedName, localEndpoints: Int, proxyHealthy: Bool) -> String {
        """
        {
        \t"service": {
        \t\t"namespace": "\(name.namespace)",
        \t\t"name": "\(name.name)"
        \t},
        \t"localEndpoints": \(localEndpoints),
        \t"serviceProxyHealthy": \(proxyHealthy)
        }
        """
    }
}

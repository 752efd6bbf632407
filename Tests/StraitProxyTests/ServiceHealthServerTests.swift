import Foundation
import Logging
import NIOConcurrencyHelpers
@testable import StraitProxy
import StraitModel
import StraitTestSupport
import Testing

/// The health check node ports in-process, bound to 127.0.0.1 only (`--nodeport-addresses
/// 127.0.0.0/8`), asked with curl. The all-addresses binding is exercised through the built
/// binary in a namespace (`ServiceHealthEndToEndTests`).
@Suite(.serialized) struct ServiceHealthServerTests {
    static let loopbackOnly = [IPCIDR("127.0.0.0/8")!]
    static let loopback = [IPAddress("127.0.0.1")!]

    static func entry(_ name: String, healthPort: Int, endpoints: [(String, Bool)], port: String = "http")
        -> ServicePortEntry {
        ServicePortEntry(
            name: ServicePortName(namespace: "shop", name: name, port: port, protocol: .tcp), port: 80,
            clusterIPs: [IPAddress("10.96.0.20")!], nodePort: 30080, externalTrafficPolicyLocal: true,
            healthCheckNodePort: UInt16(healthPort),
            allEndpoints: endpoints.map { ProxyEndpoint(address: IPAddress($0.0)!, port: 8080, isLocal: $0.1) })
    }

    /// Status code and body of `GET /` on 127.0.0.1:port; nil when nothing answers.
    static func get(_ port: Int) throws -> (status: Int, body: String)? {
        let result = try Command.output(["curl", "-s", "--max-time", "5", "-w", "\n%{http_code}",
                                         "http://127.0.0.1:\(port)/"])
        guard result.succeeded, let newline = result.stdout.lastIndex(of: "\n") else { return nil }
        return (Int(result.stdout[result.stdout.index(after: newline)...]) ?? 0, String(result.stdout[..<newline]))
    }

    final class Lines: Sendable {
        let box = NIOLockedValueBox<[String]>([])
        var log: Logger { Logger.recording { line in self.box.withLockedValue { $0.append(line) } } }
        var all: [String] { box.withLockedValue { $0 } }
    }

    @Test func answersWithTheLocalEndpointCountAndClosesWhenTheServiceGoes() async throws {
        let health = ProxyHealth(syncPeriod: 30)
        let servers = ServiceHealthServers(nodePortAddresses: Self.loopbackOnly, localAddresses: Self.loopback,
                                           nodeName: "node-a", health: health, log: .silent)
        #expect(servers.hosts == ["127.0.0.1"])
        let port = try freeTCPPort()
        // Two ports of one Service share the endpoint 10.244.1.2:8080: counted once, as kube-proxy does.
        await servers.update(ServiceTable([
            Self.entry("web", healthPort: port, endpoints: [("10.244.1.2", true), ("10.244.2.2", false)]),
            Self.entry("web", healthPort: port, endpoints: [("10.244.1.2", true)], port: "https"),
        ]))
        #expect(await servers.ports == ["shop/web": UInt16(port)])

        let ok = try #require(try Self.get(port))
        #expect(ok.status == 200)
        #expect(ok.body == "{\n\t\"service\": {\n\t\t\"namespace\": \"shop\",\n\t\t\"name\": \"web\"\n\t},\n"
                + "\t\"localEndpoints\": 1,\n\t\"serviceProxyHealthy\": true\n}")
        let json = try #require(try JSONSerialization.jsonObject(with: Data(ok.body.utf8)) as? [String: Any])
        #expect(json["localEndpoints"] as? Int == 1)

        // The local endpoint moves away: 503, and the count says why.
        await servers.update(ServiceTable([Self.entry("web", healthPort: port, endpoints: [("10.244.2.2", false)])]))
        let none = try #require(try Self.get(port))
        #expect(none.status == 503 && none.body.contains("\"localEndpoints\": 0"))

        // Back, but the proxy is unhealthy (an update queued long ago): 503 too.
        await servers.update(ServiceTable([Self.entry("web", healthPort: port, endpoints: [("10.244.1.2", true)])]))
        #expect(try Self.get(port)?.status == 200)
        health.queued(at: Date().addingTimeInterval(-120))
        let sick = try #require(try Self.get(port))
        #expect(sick.status == 503 && sick.body.contains("\"serviceProxyHealthy\": false"))
        health.updated()

        // The Service goes: its port closes.
        await servers.update(ServiceTable())
        #expect(await servers.ports.isEmpty)
        #expect(try Self.get(port) == nil)
        await servers.stop()
    }

    @Test func aTakenPortIsLoggedTheOthersServeAndItIsRetried() async throws {
        let lines = Lines()
        let servers = ServiceHealthServers(nodePortAddresses: Self.loopbackOnly, localAddresses: Self.loopback,
                                           nodeName: "node-a", health: ProxyHealth(syncPeriod: 30), log: lines.log)
        let taken = try freeTCPPort()
        let holder = ProxyHTTPServer(name: "holder", address: BindAddress(host: "127.0.0.1", port: taken)) { _, _ in
            HTTPAnswer(body: "someone else")
        }
        try await holder.start()
        var free = try freeTCPPort()
        while free == taken { free = try freeTCPPort() }
        let table = ServiceTable([Self.entry("a", healthPort: taken, endpoints: [("10.244.1.2", true)]),
                                  Self.entry("b", healthPort: free, endpoints: [("10.244.1.3", true)])])
        await servers.update(table)
        #expect(await servers.ports == ["shop/b": UInt16(free)])
        #expect(try Self.get(free)?.status == 200)
        #expect(try Self.get(taken)?.body == "someone else")
        #expect(lines.all.contains { $0.contains("failed to start health check node port \(taken) of shop/a") })

        // Freed, the port is taken up at a following update (each sync retries it, as kube-proxy's).
        await holder.stop()
        for _ in 0..<50 where await servers.ports["shop/a"] == nil {
            await servers.update(table)
            if await servers.ports["shop/a"] == nil { try await Task.sleep(for: .milliseconds(100)) }
        }
        #expect(await servers.ports == ["shop/a": UInt16(taken), "shop/b": UInt16(free)], "\(lines.all)")
        #expect(try Self.get(taken)?.status == 200)
        await servers.stop()
        #expect(try Self.get(free) == nil)
    }

    @Test func onlyLocalPolicyServicesWithAPortGetAServer() async throws {
        let servers = ServiceHealthServers(nodePortAddresses: Self.loopbackOnly, localAddresses: Self.loopback,
                                           nodeName: "node-a", health: ProxyHealth(syncPeriod: 30), log: .silent)
        var cluster = Self.entry("cluster", healthPort: try freeTCPPort(), endpoints: [("10.244.1.2", true)])
        cluster.externalTrafficPolicyLocal = false
        var noPort = Self.entry("no-port", healthPort: 1, endpoints: [])
        noPort.healthCheckNodePort = nil
        await servers.update(ServiceTable([cluster, noPort]))
        #expect(await servers.ports.isEmpty)
        await servers.stop()
    }

    @Test func nodePortAddressesChooseTheHosts() {
        let health = ProxyHealth(syncPeriod: 30)
        let all = ServiceHealthServers(nodePortAddresses: [], localAddresses: Self.loopback, nodeName: "n",
                                       health: health, log: .silent)
        #expect(all.hosts == ["::"])
        let some = ServiceHealthServers(nodePortAddresses: [IPCIDR("192.168.0.0/16")!, IPCIDR("fd00::/8")!],
                                        localAddresses: [IPAddress("10.0.0.1")!, IPAddress("192.168.1.5")!,
                                                         IPAddress("fd00::5")!],
                                        nodeName: "n", health: health, log: .silent)
        #expect(some.hosts == ["192.168.1.5", "fd00::5"])
    }
}

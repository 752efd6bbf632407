import Foundation
import StraitModel
import StraitNetlink
import StraitProxy
import StraitProxyIPVS
import StraitTestSupport
import Testing

/// Whether this process runs inside scripts/vm, whose kernel has IPVS (this machine's has none).
private let inIPVSMachine = ProcessInfo.processInfo.environment["STRAIT_IN_VM"] == "1"

/// Real packets through what `IPVSBackend` programs in the node namespace of `ProxyTopology`
/// (StraitProxyTests' topology, linked into this target), driven with hand-built `ServiceTable`s.
@Suite("IPVS mode: real packets", .serialized, .enabled(if: inIPVSMachine, "needs IPVS: runs inside scripts/vm"))
struct IPVSEndToEndTests {
    static let web = ServicePortName(namespace: "default", name: "web", port: "http", protocol: .tcp)
    static let clusterIP = IPAddress("10.96.0.10")!
    static let clusterIP6 = IPAddress("fd00:96::10")!

    static func entry(_ endpoints: [ProxyEndpoint], clusterIPs: [IPAddress] = [clusterIP],
                      configure: (inout ServicePortEntry) -> Void = { _ in }) -> ServicePortEntry {
        var entry = ServicePortEntry(name: web, port: 80, clusterIPs: clusterIPs, allEndpoints: endpoints)
        configure(&entry)
        return entry.decided(options: ProxyTopology.options())
    }

    static func backend(_ net: ProxyTopology, family: IPFamily = .ipv4, scheduler: String = "rr") throws -> IPVSBackend {
        try IPVSBackend(family: family, settings: IPVSSettings(scheduler: scheduler, options: ProxyTopology.options(),
                                                               namespace: net.node.name))
    }

    /// The real servers of the TCP service at `address`:80 in the node namespace, as the kernel reports them.
    static func realServers(_ net: ProxyTopology, _ address: String) throws -> [IPVSDestinationInfo] {
        try IPVSConnection(namespace: net.node.name).destinations(of: IPVSService(.tcp, address: address, port: 80))
    }

    /// Polls `condition` every 100 ms until it holds or `seconds` passed (a generous bound, never a timing claim).
    static func eventually(within seconds: Double, _ condition: () async throws -> Bool) async throws -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if try await condition() { return true }
            try await Task.sleep(for: .milliseconds(100))
        }
        return try await condition()
    }

    @Test("ClusterIP over TCP reaches every endpoint, masqueraded; cleanup removes services, device and table",
          arguments: [IPFamily.ipv4, .ipv6])
    func clusterIP(family: IPFamily) async throws {
        try await ProxyTopology.with(endpoints: 3) { net in
            let endpoints = (0..<3).map { net.endpoint($0, family: family) }
            let address = family == .ipv4 ? Self.clusterIP : Self.clusterIP6
            let backend = try Self.backend(net, family: family)
            try await backend.sync(from: nil, to: ServiceTable([Self.entry(endpoints, clusterIPs: [address])]))

            let answers = try net.probe("tcp", address.description, 80, count: 30)
            #expect(ProxyTopology.names(answers) == ["ep0", "ep1", "ep2"], "\(answers)")
            // The client is outside the cluster CIDR: masqueraded to the node's address on the endpoint's link.
            for answer in answers {
                let peer = answer.split(separator: " ").last.map(String.init) ?? ""
                let nodeSide = (0..<3).map { family == .ipv4 ? ProxyTopology.nodeSideIP($0) : ProxyTopology.nodeSideIP6($0) }
                #expect(nodeSide.contains(peer), "\(answer)")
            }
            #expect(try net.node.run(["ip", "addr", "show", "dev", "kube-ipvs0"]).contains(address.description))

            try await backend.cleanup()
            #expect(try net.node.run(["ipvsadm", "-Ln"]).contains("TCP") == false)
            #expect(try net.node.output(["ip", "link", "show", "kube-ipvs0"]).status != 0)
            #expect(try net.node.run(["nft", "list", "tables"]).contains("strait-ipvs") == false)
        }
    }

    @Test("a NodePort answers on the node's address")
    func nodePort() async throws {
        try await ProxyTopology.with(endpoints: 2) { net in
            let entry = Self.entry([net.endpoint(0), net.endpoint(1)]) { $0.nodePort = 30080 }
            try await Self.backend(net).sync(from: nil, to: ServiceTable([entry]))
            let answers = try net.probe("tcp", ProxyTopology.nodeIP, 30080, count: 20)
            #expect(ProxyTopology.names(answers) == ["ep0", "ep1"], "\(answers)")
        }
    }

    @Test("a Service without endpoints is refused at once (the helper table's reject), in both families")
    func noEndpointsIsRefused() async throws {
        try await ProxyTopology.with(endpoints: 1) { net in
            let table = ServiceTable([Self.entry([], clusterIPs: [Self.clusterIP, Self.clusterIP6]) { $0.nodePort = 30080 }])
            for family in [IPFamily.ipv4, .ipv6] { try await Self.backend(net, family: family).sync(from: nil, to: table) }
            #expect(try net.probe("tcp", Self.clusterIP.description, 80) == ["ERR refused"])
            #expect(try net.probe("tcp", Self.clusterIP6.description, 80) == ["ERR refused"])
            #expect(try net.probe("tcp", ProxyTopology.nodeIP, 30080) == ["ERR refused"])
        }
    }

    @Test("the scheduler and ClientIP affinity's timeout show in ipvsadm -Ln; affinity keeps a client on one endpoint")
    func schedulerAndPersistence() async throws {
        try await ProxyTopology.with(endpoints: 3) { net in
            let entry = Self.entry((0..<3).map { net.endpoint($0) }) { $0.affinityTimeout = 120 }
            try await Self.backend(net, scheduler: "wrr").sync(from: nil, to: ServiceTable([entry]))
            let listing = try net.node.run(["ipvsadm", "-Ln"])
            #expect(listing.contains("TCP  10.96.0.10:80 wrr persistent 120"), "\(listing)")
            let answers = try net.probe("tcp", Self.clusterIP.description, 80, count: 10)
            #expect(ProxyTopology.names(answers).count == 1 && answers.count == 10, "\(answers)")
        }
    }

    @Test("a removed endpoint keeps its open connection at weight 0, gets no new one, and goes once it is unused")
    func gracefulTermination() async throws {
        try await ProxyTopology.with(endpoints: 2) { net in
            let backend = try Self.backend(net)
            let both = ServiceTable([Self.entry([net.endpoint(0), net.endpoint(1)])])
            try await backend.sync(from: nil, to: both)
            try heldScript.write(toFile: net.scripts + "/held.py", atomically: true, encoding: .utf8)
            try net.client.run(["sh", "-c", "python3 \(net.scripts)/held.py 10.96.0.10 80 \(ProxyTopology.clientIP) "
                                + "\(net.scripts) >/dev/null 2>&1 &"])
            let heldFile = net.scripts + "/held"
            #expect(try await Self.eventually(within: 60) { FileManager.default.fileExists(atPath: heldFile) })
            let held = try String(contentsOfFile: heldFile, encoding: .utf8)
            let leaving = held.hasPrefix("ep0") ? 0 : 1
            let staying = 1 - leaving

            let one = ServiceTable([Self.entry([net.endpoint(staying)])])
            try await backend.sync(from: both, to: one)
            #expect(await backend.lastSync?.draining == 1)
            let leavingAddress = ProxyTopology.endpointIP(leaving)
            let draining = try Self.realServers(net, "10.96.0.10").first { $0.destination.address == leavingAddress }
            #expect(draining?.destination.weight == 0 && draining?.activeConnections == 1, "\(String(describing: draining))")

            let fresh = try net.probe("tcp", Self.clusterIP.description, 80, count: 10)
            #expect(ProxyTopology.names(fresh) == [ProxyTopology.endpointName(staying)], "\(fresh)")

            // The held connection still works, then closes with a reset (IPVS forgets it within seconds).
            #expect(FileManager.default.createFile(atPath: net.scripts + "/go", contents: nil))
            let replyFile = net.scripts + "/reply"
            #expect(try await Self.eventually(within: 60) { FileManager.default.fileExists(atPath: replyFile) })
            let reply = try String(contentsOfFile: replyFile, encoding: .utf8)
            #expect(reply.hasPrefix("\(ProxyTopology.endpointName(leaving)) got x"), "\(reply)")

            let gone = try await Self.eventually(within: 120) {
                try await backend.sync(from: one, to: one)
                return try Self.realServers(net, "10.96.0.10").map(\.destination.address) == [ProxyTopology.endpointIP(staying)]
            }
            #expect(gone)
        }
    }

    @Test("a real server deleted with ipvsadm comes back at the next full sync")
    func fullSyncRepairs() async throws {
        try await ProxyTopology.with(endpoints: 2) { net in
            let backend = try Self.backend(net)
            let table = ServiceTable([Self.entry([net.endpoint(0), net.endpoint(1)])])
            try await backend.sync(from: nil, to: table)
            try net.node.run(["ipvsadm", "-d", "-t", "10.96.0.10:80", "-r", "\(ProxyTopology.endpointIP(1)):8080"])
            #expect(ProxyTopology.names(try net.probe("tcp", Self.clusterIP.description, 80, count: 10)) == ["ep0"])

            try await backend.sync(from: table, to: table)
            #expect(await backend.lastSync?.requests == 0, "a partial sync trusts what it programmed")
            try await backend.sync(from: nil, to: table)
            #expect(await backend.lastSync?.requests == 1)
            let answers = try net.probe("tcp", Self.clusterIP.description, 80, count: 20)
            #expect(ProxyTopology.names(answers) == ["ep0", "ep1"], "\(answers)")
        }
    }

    @Test("the built strait proxy --proxy-mode ipvs serves a Service from the store and says ipvs at /proxyMode")
    func builtProxy() async throws {
        try await ProxyTopology.with(endpoints: 2) { net in
            let store = net.scripts + "/store.db"
            let manifestPath = net.scripts + "/web.yaml"
            try manifest.write(toFile: manifestPath, atomically: true, encoding: .utf8)
            let strait = builtProduct("strait")
            let proxy = try Command.start(["ip", "netns", "exec", net.node.name, strait, "proxy", "--proxy-mode", "ipvs",
                                           "--store", store, "--hostname-override", "node",
                                           "--cluster-cidr", "10.244.0.0/16", "--metrics-bind-address", "127.0.0.1:10249",
                                           "--healthz-bind-address", "", "--conntrack-max-per-core=0"], stdin: "")
            defer { kill(proxy, SIGKILL); Command.waitForExit(proxy) }
            try Command.run([strait, "apply", "-f", manifestPath, "--store", store])
            #expect(try await Self.eventually(within: 120) {
                ProxyTopology.names(try net.probe("tcp", "10.96.0.10", 80, timeout: 0.5)).count == 1
            })
            #expect(ProxyTopology.names(try net.probe("tcp", "10.96.0.10", 80, count: 20)) == ["ep0", "ep1"])
            let mode = try net.node.run(["curl", "-s", "http://127.0.0.1:10249/proxyMode"])
            #expect(mode == "ipvs", "\(mode)")
            kill(proxy, SIGTERM)
            Command.waitForExit(proxy)
            try net.node.run([strait, "proxy", "--proxy-mode", "ipvs", "--cleanup"])
            #expect(try net.node.run(["ipvsadm", "-Ln"]).contains("TCP") == false)
        }
    }
}

private let manifest = ProxyTopology.webManifest

/// Holds one connection open: writes the greeting to DIR/held, waits for DIR/go (at most 120 s),
/// sends "x", writes the answer to DIR/reply and closes with a reset.
private let heldScript = """
import os, socket, struct, sys, time
host, port, source, d = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
def publish(name, text):
    with open(d + "/" + name + ".tmp", "w") as f:
        f.write(text)
    os.rename(d + "/" + name + ".tmp", d + "/" + name)
s = socket.create_connection((host, port), timeout=120, source_address=(source, 0))
f = s.makefile("rb")
publish("held", f.readline().decode())
deadline = time.time() + 120
while not os.path.exists(d + "/go") and time.time() < deadline:
    time.sleep(0.1)
s.sendall(b"x")
reply = s.recv(4096).decode()
s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
s.close()
publish("reply", reply)
"""

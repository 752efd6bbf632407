import Foundation
import StraitModel
import StraitProxy
import StraitTestSupport

/// A closed test network for the proxy: a node namespace (where the rules live) joined by one veth
/// pair each to a client namespace and to endpoint namespaces that run a server answering with
/// its name and the peer address it sees.
///
/// ```
///  client 192.168.100.2,.3 ── node 192.168.100.1 ─┬─ 10.244.1.1 ── ep0 10.244.1.2
///                                                  └─ 10.244.2.1 ── ep1 10.244.2.2 …
/// ```
/// Cluster CIDR 10.244.0.0/16; ClusterIPs from 10.96.0.0/12 and external addresses from
/// 203.0.113.0/24 are routed by the client to the node (its default route); the node's default
/// route points back at the client.
struct ProxyTopology {
    let node: TestNamespace
    let client: TestNamespace
    let endpoints: [TestNamespace]
    let scripts: String

    static let clusterCIDR = IPCIDR("10.244.0.0/16")!
    static let nodeIP = "192.168.100.1"
    static let clientIP = "192.168.100.2"
    static let otherClientIP = "192.168.100.3"
    /// The port every endpoint server listens on, TCP and UDP.
    static let serverPort: UInt16 = 8080

    static func endpointIP(_ index: Int) -> String { "10.244.\(index + 1).2" }
    static func nodeSideIP(_ index: Int) -> String { "10.244.\(index + 1).1" }
    static func endpointName(_ index: Int) -> String { "ep\(index)" }

    /// Makes the namespaces, wires them and starts a server in each endpoint namespace; deletes it
    /// all afterwards (also on failure).
    static func with<T>(endpoints count: Int, _ body: (ProxyTopology) async throws -> T) async throws -> T {
        try await withTestNamespaces(2 + count) { namespaces in
            let scripts = NSTemporaryDirectory() + "strait-proxy-e2e-\(getpid())-\(namespaces[0].name)"
            try FileManager.default.createDirectory(atPath: scripts, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(atPath: scripts) }
            try serverScript.write(toFile: scripts + "/server.py", atomically: true, encoding: .utf8)
            try probeScript.write(toFile: scripts + "/probe.py", atomically: true, encoding: .utf8)
            let topology = ProxyTopology(node: namespaces[0], client: namespaces[1],
                                         endpoints: Array(namespaces[2...]), scripts: scripts)
            try topology.wire()
            return try await body(topology)
        }
    }

    private func wire() throws {
        // No ICMP redirects: the node's default route leaves by the interface the client's packets came
        // in on, and a redirect would make the client ignore the node's REJECT.
        try node.run(["sysctl", "-q", "-w", "net.ipv4.ip_forward=1", "net.ipv4.conf.all.send_redirects=0",
                      "net.ipv4.conf.default.send_redirects=0"])
        try node.connect(to: client, localName: "client0", remoteName: "eth0")
        try node.run(["ip", "addr", "add", "\(Self.nodeIP)/24", "dev", "client0"])
        try client.run(["ip", "addr", "add", "\(Self.clientIP)/24", "dev", "eth0"])
        try client.run(["ip", "addr", "add", "\(Self.otherClientIP)/24", "dev", "eth0"])
        try client.run(["ip", "route", "add", "default", "via", Self.nodeIP])
        // The node's way out (as a real node has one), so traffic to a service address with no rule
        // is forwarded and meets the filter chains instead of failing routing.
        try node.run(["ip", "route", "add", "default", "via", Self.clientIP])
        for (index, endpoint) in endpoints.enumerated() {
            try node.connect(to: endpoint, localName: "ep\(index)", remoteName: "eth0")
            try node.run(["ip", "addr", "add", "\(Self.nodeSideIP(index))/24", "dev", "ep\(index)"])
            try endpoint.run(["ip", "addr", "add", "\(Self.endpointIP(index))/24", "dev", "eth0"])
            try endpoint.run(["ip", "route", "add", "default", "via", Self.nodeSideIP(index)])
            try startServer(index)
        }
    }

    /// (Re)starts endpoint `index`'s server: TCP and UDP on `serverPort`, answering "epN <peer address>".
    func startServer(_ index: Int) throws {
        try endpoints[index].run(["sh", "-c", "python3 \(scripts)/server.py \(Self.endpointName(index)) \(Self.serverPort) >/dev/null 2>&1 &"])
        try endpoints[index].waitForListener(port: Int(Self.serverPort))
    }

    func backend(flavor: IPTablesFlavor = .hostDefault(), nodePortAddresses: [IPCIDR] = [],
                 masqueradeAll: Bool = false) -> IPTablesBackend {
        IPTablesBackend(options: IPTablesRuleOptions(clusterCIDRs: [Self.clusterCIDR], masqueradeAll: masqueradeAll,
                                                     nodePortAddresses: nodePortAddresses,
                                                     nodeIPs: [IPAddress(Self.nodeIP)!]),
                        tools: IPTablesRestore(flavor: flavor, namespace: node.name))
    }

    /// The endpoint as the service sees it; `local` marks it as on the node.
    func endpoint(_ index: Int, local: Bool = false, ready: Bool = true, terminating: Bool = false) -> ProxyEndpoint {
        ProxyEndpoint(address: IPAddress(Self.endpointIP(index))!, port: Self.serverPort, isLocal: local,
                      isReady: ready, isServing: true, isTerminating: terminating)
    }

    /// `count` requests from the client, each a new connection (TCP) or a new socket (UDP); one result
    /// per request: the server's answer ("ep1 192.168.100.2") or "ERR refused" / "ERR timeout" /
    /// "ERR unreachable". `sourcePort` pins the UDP flow to one 5-tuple.
    func probe(_ proto: String, _ host: String, _ port: UInt16, count: Int = 1, source: String = clientIP,
               sourcePort: Int = 0, timeout: Double = 1.5) throws -> [String] {
        let output = try client.run(["python3", "\(scripts)/probe.py", proto, host, "\(port)", "\(count)", source,
                                     "\(sourcePort)", "\(timeout)"])
        return output.split(separator: "\n").map(String.init)
    }

    /// The endpoint names in `answers` ("ep1 …" → "ep1").
    static func names(_ answers: [String]) -> Set<String> {
        Set(answers.filter { !$0.hasPrefix("ERR") }.map { String($0.split(separator: " ")[0]) })
    }

    /// The node's rules, as `iptables-save` prints them.
    func saved(flavor: IPTablesFlavor = .hostDefault()) throws -> String {
        try node.run([flavor.rawValue == "nft" ? "iptables-nft-save" : "iptables-legacy-save"])
    }
}

private let serverScript = """
import socket, sys, threading
name, port = sys.argv[1], int(sys.argv[2])
def serve(conn, peer):
    try:
        conn.sendall(("%s %s\\n" % (name, peer[0])).encode())
        while True:
            data = conn.recv(4096)
            if not data:
                break
            conn.sendall(("%s got %s" % (name, data.decode())).encode())
    except OSError:
        pass
    finally:
        conn.close()
def tcp():
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("", port))
    s.listen(128)
    while True:
        conn, peer = s.accept()
        threading.Thread(target=serve, args=(conn, peer), daemon=True).start()
threading.Thread(target=tcp, daemon=True).start()
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u.bind(("", port))
while True:
    data, peer = u.recvfrom(2048)
    u.sendto(("%s %s\\n" % (name, peer[0])).encode(), peer)
"""

private let probeScript = """
import socket, sys
proto, host, port, count, source, sport, timeout = sys.argv[1:8]
port, count, sport, timeout = int(port), int(count), int(sport), float(timeout)
for _ in range(count):
    try:
        if proto == "tcp":
            s = socket.create_connection((host, port), timeout=timeout, source_address=(source, 0))
            data = b""
            while not data.endswith(b"\\n"):
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
        else:
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.settimeout(timeout)
            s.bind((source, sport))
            s.connect((host, port))
            s.send(b"x")
            data = s.recv(2048)
        s.close()
        print(data.decode().strip() or "ERR empty", flush=True)
    except ConnectionRefusedError:
        print("ERR refused", flush=True)
    except socket.timeout:
        print("ERR timeout", flush=True)
    except OSError as error:
        print("ERR unreachable %s" % error, flush=True)
"""

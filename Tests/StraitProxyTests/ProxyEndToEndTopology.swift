import Foundation
import StraitModel
import StraitProxy
import StraitProxyIPTables
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
/// route points back at the client. Every link carries IPv6 too: node fd00:100::1, clients
/// fd00:100::2 and ::3, endpoint N fd00:244:N+1::2 behind fd00:244:N+1::1; cluster CIDR
/// fd00:244::/32, ClusterIPs from fd00:96::/64.
struct ProxyTopology {
    let node: TestNamespace
    let client: TestNamespace
    let endpoints: [TestNamespace]
    let scripts: String

    static let clusterCIDR = IPCIDR("10.244.0.0/16")!
    static let clusterCIDR6 = IPCIDR("fd00:244::/32")!
    static let nodeIP = "192.168.100.1"
    static let clientIP = "192.168.100.2"
    static let otherClientIP = "192.168.100.3"
    static let nodeIP6 = "fd00:100::1"
    static let clientIP6 = "fd00:100::2"
    /// The port every endpoint server listens on, TCP and UDP.
    static let serverPort: UInt16 = 8080

    /// Service `default/web` (cluster IP 10.96.0.10, port 80) with one slice: ep0 on this node ("node"),
    /// ep1 on another, both on port 8080 — what the built-proxy tests apply with `strait apply`.
    static let webManifest = webManifest(triggerTime: nil)

    /// `webManifest`, its slice stamped with `endpoints.kubernetes.io/last-change-trigger-time` when
    /// `triggerTime` is given (as the EndpointSlice controller stamps it).
    static func webManifest(triggerTime: String?) -> String {
        let annotations = triggerTime.map {
            "\n  annotations: {endpoints.kubernetes.io/last-change-trigger-time: \"\($0)\"}"
        } ?? ""
        return """
            apiVersion: v1
            kind: Service
            metadata: {name: web, namespace: default}
            spec:
              clusterIP: 10.96.0.10
              ports: [{name: http, port: 80, targetPort: 8080, protocol: TCP}]
            ---
            apiVersion: discovery.k8s.io/v1
            kind: EndpointSlice
            metadata:
              name: web-1
              namespace: default
              labels: {kubernetes.io/service-name: web}\(annotations)
            addressType: IPv4
            ports: [{name: http, port: 8080, protocol: TCP}]
            endpoints:
            - addresses: [10.244.1.2]
              conditions: {ready: true}
              nodeName: node
            - addresses: [10.244.2.2]
              conditions: {ready: true}
              nodeName: other
            """
    }

    static func endpointIP(_ index: Int) -> String { "10.244.\(index + 1).2" }
    static func nodeSideIP(_ index: Int) -> String { "10.244.\(index + 1).1" }
    static func endpointIP6(_ index: Int) -> String { "fd00:244:\(index + 1)::2" }
    static func nodeSideIP6(_ index: Int) -> String { "fd00:244:\(index + 1)::1" }
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
                      "net.ipv4.conf.default.send_redirects=0", "net.ipv6.conf.all.forwarding=1"])
        try node.connect(to: client, localName: "client0", remoteName: "eth0")
        try node.run(["ip", "addr", "add", "\(Self.nodeIP)/24", "dev", "client0"])
        try client.run(["ip", "addr", "add", "\(Self.clientIP)/24", "dev", "eth0"])
        try client.run(["ip", "addr", "add", "\(Self.otherClientIP)/24", "dev", "eth0"])
        try client.run(["ip", "route", "add", "default", "via", Self.nodeIP])
        // IPv6 without duplicate address detection, so addresses are usable at once.
        try node.run(["ip", "addr", "add", "\(Self.nodeIP6)/64", "dev", "client0", "nodad"])
        try client.run(["ip", "addr", "add", "\(Self.clientIP6)/64", "dev", "eth0", "nodad"])
        try client.run(["ip", "addr", "add", "fd00:100::3/64", "dev", "eth0", "nodad"])
        try client.run(["ip", "-6", "route", "add", "default", "via", Self.nodeIP6])
        // The node's way out (as a real node has one), so traffic to a service address with no rule
        // is forwarded and meets the filter chains instead of failing routing.
        try node.run(["ip", "route", "add", "default", "via", Self.clientIP])
        try node.run(["ip", "-6", "route", "add", "default", "via", Self.clientIP6])
        for (index, endpoint) in endpoints.enumerated() {
            try node.connect(to: endpoint, localName: "ep\(index)", remoteName: "eth0")
            try node.run(["ip", "addr", "add", "\(Self.nodeSideIP(index))/24", "dev", "ep\(index)"])
            try endpoint.run(["ip", "addr", "add", "\(Self.endpointIP(index))/24", "dev", "eth0"])
            try endpoint.run(["ip", "route", "add", "default", "via", Self.nodeSideIP(index)])
            try node.run(["ip", "addr", "add", "\(Self.nodeSideIP6(index))/64", "dev", "ep\(index)", "nodad"])
            try endpoint.run(["ip", "addr", "add", "\(Self.endpointIP6(index))/64", "dev", "eth0", "nodad"])
            try endpoint.run(["ip", "-6", "route", "add", "default", "via", Self.nodeSideIP6(index)])
            try startServer(index)
        }
    }

    /// (Re)starts endpoint `index`'s server: TCP and UDP on `serverPort`, answering "epN <peer address>".
    func startServer(_ index: Int) throws {
        try endpoints[index].run(["sh", "-c", "python3 \(scripts)/server.py \(Self.endpointName(index)) \(Self.serverPort) >/dev/null 2>&1 &"])
        try endpoints[index].waitForListener(port: Int(Self.serverPort))
    }

    /// The proxy's options on this node, as `strait proxy --cluster-cidr 10.244.0.0/16,fd00:244::/32` has them.
    static func options(masqueradeAll: Bool = false, nodePortAddresses: [IPCIDR] = []) -> ProxyOptions {
        ProxyOptions(clusterCIDRs: [clusterCIDR, clusterCIDR6], masqueradeAll: masqueradeAll,
                     nodePortAddresses: nodePortAddresses, nodeIPs: [IPAddress(nodeIP)!, IPAddress(nodeIP6)!])
    }

    func backend(flavor: IPTablesFlavor = .hostDefault(), family: IPFamily = .ipv4,
                 options: ProxyOptions = ProxyTopology.options()) -> IPTablesBackend {
        IPTablesBackend(options: IPTablesRuleOptions(family: family, proxy: options),
                        tools: IPTablesRestore(flavor: flavor, family: family, namespace: node.name))
    }

    /// The endpoint as the service sees it, in `family`; `local` marks it as on the node.
    func endpoint(_ index: Int, family: IPFamily = .ipv4, local: Bool = false, ready: Bool = true,
                  terminating: Bool = false) -> ProxyEndpoint {
        let address = family == .ipv4 ? Self.endpointIP(index) : Self.endpointIP6(index)
        return ProxyEndpoint(address: IPAddress(address)!, port: Self.serverPort, isLocal: local,
                             isReady: ready, isServing: true, isTerminating: terminating)
    }

    /// `count` requests from the client, each a new connection (TCP) or a new socket (UDP); one result
    /// per request: the server's answer ("ep1 192.168.100.2") or "ERR refused" / "ERR timeout" /
    /// "ERR unreachable". `sourcePort` pins the UDP flow to one 5-tuple.
    func probe(_ proto: String, _ host: String, _ port: UInt16, count: Int = 1, source: String? = nil,
               sourcePort: Int = 0, timeout: Double = 1.5) throws -> [String] {
        let source = source ?? (host.contains(":") ? Self.clientIP6 : Self.clientIP)
        let output = try client.run(["python3", "\(scripts)/probe.py", proto, host, "\(port)", "\(count)", source,
                                     "\(sourcePort)", "\(timeout)"])
        return output.split(separator: "\n").map(String.init)
    }

    /// The endpoint names in `answers` ("ep1 …" → "ep1").
    static func names(_ answers: [String]) -> Set<String> {
        Set(answers.filter { !$0.hasPrefix("ERR") }.map { String($0.split(separator: " ")[0]) })
    }

    /// The node's rules, as `iptables-save` prints them.
    func saved(flavor: IPTablesFlavor = .hostDefault(), family: IPFamily = .ipv4) throws -> String {
        try node.run([flavor.binary("iptables-save", family: family)])
    }
}

private let serverScript = """
import socket, sys, threading
name, port = sys.argv[1], int(sys.argv[2])
def plain(address):
    return address[7:] if address.startswith("::ffff:") else address
def dual(kind):
    s = socket.socket(socket.AF_INET6, kind)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("::", port))
    return s
def serve(conn, peer):
    try:
        conn.sendall(("%s %s\\n" % (name, plain(peer[0]))).encode())
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
    s = dual(socket.SOCK_STREAM)
    s.listen(128)
    while True:
        conn, peer = s.accept()
        threading.Thread(target=serve, args=(conn, peer), daemon=True).start()
threading.Thread(target=tcp, daemon=True).start()
u = dual(socket.SOCK_DGRAM)
while True:
    data, peer = u.recvfrom(2048)
    u.sendto(("%s %s\\n" % (name, plain(peer[0]))).encode(), peer)
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
            s = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_DGRAM)
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

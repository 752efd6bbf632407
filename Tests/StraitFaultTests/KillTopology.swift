import Foundation
import StraitTestSupport

/// The closed network the kill-fault suite runs `strait proxy` in: a node namespace (where the
/// rules live) joined by a veth pair each to a client and to two endpoint namespaces, each running
/// an echo server that greets with its name and answers "epN got …" to every line.
///
/// ```
///  client 192.168.100.2 ── node 192.168.100.1 ─┬─ 10.244.1.1 ── ep0 10.244.1.2 (zone a)
///                                               └─ 10.244.2.1 ── ep1 10.244.2.2 (zone b)
/// ```
struct KillTopology {
    let node: TestNamespace
    let client: TestNamespace
    let endpoints: [TestNamespace]
    let scripts: String

    static let nodeIP = "192.168.100.1"
    static let clientIP = "192.168.100.2"
    /// Below the ephemeral port range.
    static let serverPort = 8080

    static func endpointIP(_ index: Int) -> String { "10.244.\(index + 1).2" }

    static func with<T>(_ body: (KillTopology) async throws -> T) async throws -> T {
        try await withTestNamespaces(4) { namespaces in
            let scripts = NSTemporaryDirectory() + "strait-fault-kill-\(getpid())-\(namespaces[0].name)"
            try FileManager.default.createDirectory(atPath: scripts, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(atPath: scripts) }
            try echoServer.write(toFile: scripts + "/server.py", atomically: true, encoding: .utf8)
            try greetingProbe.write(toFile: scripts + "/probe.py", atomically: true, encoding: .utf8)
            try liveClient.write(toFile: scripts + "/live.py", atomically: true, encoding: .utf8)
            let topology = KillTopology(node: namespaces[0], client: namespaces[1],
                                        endpoints: Array(namespaces[2...]), scripts: scripts)
            try topology.wire()
            return try await body(topology)
        }
    }

    private func wire() throws {
        try node.run(["sysctl", "-q", "-w", "net.ipv4.ip_forward=1", "net.ipv4.conf.all.send_redirects=0",
                      "net.ipv4.conf.default.send_redirects=0"])
        try node.connect(to: client, localName: "client0", remoteName: "eth0")
        try node.run(["ip", "addr", "add", "\(Self.nodeIP)/24", "dev", "client0"])
        try client.run(["ip", "addr", "add", "\(Self.clientIP)/24", "dev", "eth0"])
        try client.run(["ip", "route", "add", "default", "via", Self.nodeIP])
        try node.run(["ip", "route", "add", "default", "via", Self.clientIP])
        for (index, endpoint) in endpoints.enumerated() {
            try node.connect(to: endpoint, localName: "ep\(index)", remoteName: "eth0")
            try node.run(["ip", "addr", "add", "10.244.\(index + 1).1/24", "dev", "ep\(index)"])
            try endpoint.run(["ip", "addr", "add", "\(Self.endpointIP(index))/24", "dev", "eth0"])
            try endpoint.run(["ip", "route", "add", "default", "via", "10.244.\(index + 1).1"])
            try endpoint.run(["sh", "-c",
                              "python3 \(scripts)/server.py ep\(index) \(Self.serverPort) >/dev/null 2>&1 &"])
            try endpoint.waitForListener(port: Self.serverPort)
        }
    }

    /// Which endpoint a new connection to `host:port` reaches ("ep0", "ep1"), or "ERR …".
    func probe(_ host: String, _ port: Int = 80) throws -> String {
        try client.run(["python3", "\(scripts)/probe.py", host, "\(port)"])
            .trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Starts the live client: one TCP connection to `host:port`, a line sent and its echo awaited
    /// every 200 ms until `stop` exists (at most `seconds`); its log is `output`.
    func startLiveClient(_ host: String, _ port: Int = 80, output: String, stop: String,
                         seconds: Int) throws -> pid_t {
        try Command.start(["ip", "netns", "exec", client.name, "python3", "\(scripts)/live.py", host, "\(port)",
                           output, stop, "\(seconds)"], stdin: "")
    }
}

private let echoServer = """
import socket, sys, threading
name, port = sys.argv[1], int(sys.argv[2])
def serve(conn):
    try:
        conn.sendall(("%s\\n" % name).encode())
        buffer = b""
        while True:
            data = conn.recv(4096)
            if not data:
                break
            buffer += data
            while b"\\n" in buffer:
                line, buffer = buffer.split(b"\\n", 1)
                conn.sendall(("%s got %s\\n" % (name, line.decode())).encode())
    except OSError:
        pass
    finally:
        conn.close()
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", port))
s.listen(128)
while True:
    conn, _ = s.accept()
    threading.Thread(target=serve, args=(conn,), daemon=True).start()
"""

private let greetingProbe = """
import socket, sys
try:
    s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=2)
    data = b""
    while not data.endswith(b"\\n"):
        chunk = s.recv(100)
        if not chunk:
            break
        data += chunk
    print(data.decode().strip() or "ERR empty")
except Exception as error:
    print("ERR %s" % error)
"""

/// Prints "ok N" after every good exchange and "fail N why" on a bad one (then stops): an
/// exchange is good when the echo of line N comes back on the same connection within 30 s.
private let liveClient = """
import os, socket, sys, time
host, port, output, stop, seconds = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], int(sys.argv[5])
log = open(output, "w", buffering=1)
deadline = time.time() + seconds
try:
    s = socket.create_connection((host, port), timeout=30)
    name = b""
    while not name.endswith(b"\\n"):
        name += s.recv(100)
    name = name.decode().strip()
    log.write("connected %s\\n" % name)
except Exception as error:
    log.write("fail 0 connect: %s\\n" % error)
    sys.exit(1)
n = 0
while not os.path.exists(stop) and time.time() < deadline:
    n += 1
    try:
        s.sendall(b"%d\\n" % n)
        data = b""
        while not data.endswith(b"\\n"):
            chunk = s.recv(100)
            if not chunk:
                raise OSError("connection closed")
            data += chunk
        if data.decode() != "%s got %d\\n" % (name, n):
            raise OSError("unexpected answer %r" % data)
        log.write("ok %d\\n" % n)
    except Exception as error:
        log.write("fail %d %s\\n" % (n, error))
        break
    time.sleep(0.2)
log.write("done\\n")
"""

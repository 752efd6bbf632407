#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Synchronization

/// `--healthz-ip`/`--healthz-port`: answers every HTTP request with 200 once this node is
/// programmed (its lease held, its device and the peers in place) and 503 before, as flanneld's
/// `/healthz` does. One blocking thread; each request is read, answered and closed.
///
/// Equivalent: `curl -s -o /dev/null -w '%{http_code}' http://IP:PORT/healthz`.
public final class HealthServer: Sendable {
    private let ready = Mutex(false)
    private let socket: Int32
    public let address: String
    public let port: Int

    /// Binds and listens at once, so a taken port fails the start naming the address.
    public init(address: String, port: Int) throws(OverlayError) {
        let v6 = address.contains(":")
        let fd = Glibc.socket(v6 ? AF_INET6 : AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else {
            throw OverlayError(.file, "cannot open the healthz socket: \(String(cString: strerror(errno)))")
        }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        let bound: Int32
        if v6 {
            var sa = sockaddr_in6()
            sa.sin6_family = sa_family_t(AF_INET6)
            sa.sin6_port = in_port_t(UInt16(port).bigEndian)
            inet_pton(AF_INET6, address, &sa.sin6_addr)
            bound = withUnsafePointer(to: &sa) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in6>.size))
                }
            }
        } else {
            var sa = sockaddr_in()
            sa.sin_family = sa_family_t(AF_INET)
            sa.sin_port = in_port_t(UInt16(port).bigEndian)
            inet_pton(AF_INET, address, &sa.sin_addr)
            bound = withUnsafePointer(to: &sa) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
        }
        guard bound == 0, listen(fd, 16) == 0 else {
            let reason = String(cString: strerror(errno))
            close(fd)
            throw OverlayError(.file, "cannot listen on --healthz-ip \(address) --healthz-port \(port): \(reason)")
        }
        socket = fd
        self.address = address
        self.port = port
        let server = self
        Thread.detachNewThread { server.serve() }
    }

    /// Called by the agent: true once programmed, false when it has to program again.
    public func set(ready value: Bool) { ready.withLock { $0 = value } }

    private func serve() {
        while true {
            let client = accept(socket, nil, nil)
            if client < 0 {
                if errno == EINTR || errno == ECONNABORTED { continue }
                return
            }
            var timeout = timeval(tv_sec: 2, tv_usec: 0)
            setsockopt(client, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
            var buffer = [UInt8](repeating: 0, count: 2048)
            _ = read(client, &buffer, buffer.count)
            let ok = ready.withLock { $0 }
            let body = ok ? "ok\n" : "not programmed yet\n"
            let status = ok ? "200 OK" : "503 Service Unavailable"
            let response = "HTTP/1.1 \(status)\r\nContent-Type: text/plain\r\nContent-Length: \(body.utf8.count)\r\n"
                + "Connection: close\r\n\r\n\(body)"
            _ = response.withCString { write(client, $0, strlen($0)) }
            close(client)
        }
    }
}

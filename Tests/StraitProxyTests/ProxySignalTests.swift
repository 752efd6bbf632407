import Foundation
import StraitTestSupport
import Testing

/// The built `strait proxy` stops gracefully on SIGTERM: it logs the signal, stops its parts and
/// exits 0 (the review found "signal 0: stopping" logged for any stop, and SIG_IGN left behind).
@Suite(.serialized) struct ProxySignalTests {
    /// Polls `check` (every 100 ms, at most `attempts` times) until it is true.
    func eventually(_ attempts: Int = 200, _ check: () throws -> Bool) async throws -> Bool {
        for _ in 0..<attempts {
            if try check() { return true }
            try await Task.sleep(for: .milliseconds(100))
        }
        return false
    }

    @Test func sigtermStopsTheProxyGracefully() async throws {
        try await withTestNamespaces(1) { namespaces in
            let node = namespaces[0]
            let dir = FileManager.default.temporaryDirectory.appendingPathComponent("strait-signal-\(getpid())").path
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(atPath: dir) }
            let log = dir + "/proxy.log"
            let proxy = [builtProduct("strait"), "proxy", "--store", dir + "/store.db", "--hostname-override", "node",
                         "--metrics-bind-address", "127.0.0.1:10249", "--healthz-bind-address", "127.0.0.1:10256",
                         "--conntrack-max-per-core=0", "-v", "2"]
            // `exec` keeps the PID: the test is the proxy's parent and reads its exit status itself.
            let pid = try Command.start(["sh", "-c", "exec ip netns exec \(node.name) \(proxy.joined(separator: " ")) 2>\(log)"],
                                        stdin: "")
            var exited = false
            defer { if !exited { kill(pid, SIGKILL); Command.waitForExit(pid) } }
            func text(_ path: String) -> String { (try? String(contentsOfFile: path, encoding: .utf8)) ?? "" }

            // Signals are trapped once this line is out; a SIGTERM before it would kill the process.
            #expect(try await eventually { text(log).contains("stopping gracefully on SIGTERM or SIGINT") }, "\(text(log))")
            kill(pid, SIGTERM)
            var status: Int32 = 0
            exited = try await eventually { waitpid(pid, &status, WNOHANG) == pid }
            #expect(exited, "still running after SIGTERM: \(text(log))")
            // Exited by itself (not killed by the signal), with status 0.
            #expect(status & 0x7f == 0 && (status >> 8) & 0xff == 0, "wait status \(status): \(text(log))")
            #expect(text(log).contains(" strait-proxy info: SIGTERM: stopping"), "\(text(log))")
            #expect(!text(log).contains("signal 0"))
            #expect(!text(log).contains(" error: "), "\(text(log))")
        }
    }
}

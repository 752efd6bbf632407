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
            let log = dir + "/proxy.log", status = dir + "/status", pidFile = dir + "/pid"
            let proxy = [builtProduct("strait"), "proxy", "--store", dir + "/store.db", "--hostname-override", "node",
                         "--metrics-bind-address", "127.0.0.1:10249", "--healthz-bind-address", "127.0.0.1:10256",
                         "-v", "2"]
            // The shell records the proxy's PID and, once it ends, its exit status.
            let script = "ip netns exec \(node.name) \(proxy.joined(separator: " ")) 2>\(log) & "
                + "echo $! > \(pidFile); wait $!; echo $? > \(status)"
            let shell = try Command.start(["sh", "-c", script], stdin: "")
            defer { kill(shell, SIGKILL); Command.waitForExit(shell) }
            func text(_ path: String) -> String { (try? String(contentsOfFile: path, encoding: .utf8)) ?? "" }

            // Signals are trapped once this line is out; a SIGTERM before it would kill the process.
            #expect(try await eventually { text(log).contains("stopping gracefully on SIGTERM or SIGINT") }, "\(text(log))")
            let pid = try #require(Int32(text(pidFile).trimmingCharacters(in: .whitespacesAndNewlines)))
            kill(pid, SIGTERM)
            #expect(try await eventually { !text(status).isEmpty })
            #expect(text(status).trimmingCharacters(in: .whitespacesAndNewlines) == "0", "\(text(log))")
            #expect(text(log).contains(" strait-proxy info: SIGTERM: stopping"), "\(text(log))")
            #expect(!text(log).contains("signal 0"))
            #expect(!text(log).contains(" error: "), "\(text(log))")
        }
    }
}

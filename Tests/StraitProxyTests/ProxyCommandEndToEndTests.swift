import Foundation
import StraitTestSupport
import Testing

/// The built `strait proxy` in a node namespace, fed through the store by the built `strait apply`:
/// packets, the 10249/10256 endpoints, a restart under an open connection, and `--cleanup`.
@Suite(.serialized) struct ProxyCommandEndToEndTests {
    static let manifest = ProxyTopology.webManifest

    /// Polls `check` (every 100 ms, at most `attempts` times) until it is true.
    func eventually(_ attempts: Int = 100, _ check: () throws -> Bool) async throws -> Bool {
        for _ in 0..<attempts {
            if try check() { return true }
            try await Task.sleep(for: .milliseconds(100))
        }
        return false
    }

    @Test func proxyFromTheStoreAnswersAndSurvivesRestart() async throws {
        try await ProxyTopology.with(endpoints: 2) { net in
            let store = net.scripts + "/store.db"
            let manifestPath = net.scripts + "/web.yaml"
            try Self.manifest.write(toFile: manifestPath, atomically: true, encoding: .utf8)
            let strait = builtProduct("strait")
            let proxyArguments = ["ip", "netns", "exec", net.node.name, strait, "proxy", "--store", store,
                                  "--hostname-override", "node", "--cluster-cidr", "10.244.0.0/16",
                                  "--conntrack-max-per-core=0",
                                  "--metrics-bind-address", "127.0.0.1:10249", "--healthz-bind-address", "127.0.0.1:10256"]
            var proxy = try Command.start(proxyArguments, stdin: "")
            defer { kill(proxy, SIGKILL); Command.waitForExit(proxy) }

            try Command.run([strait, "apply", "-f", manifestPath, "--store", store])
            #expect(try await eventually { ProxyTopology.names(try net.probe("tcp", "10.96.0.10", 80, timeout: 0.5)).count == 1 })
            #expect(ProxyTopology.names(try net.probe("tcp", "10.96.0.10", 80, count: 20)) == ["ep0", "ep1"])

            let mode = try net.node.run(["curl", "-s", "-i", "http://127.0.0.1:10249/proxyMode"])
            #expect(mode.hasPrefix("HTTP/1.1 200") && mode.hasSuffix("\r\n\r\niptables"), "\(mode)")
            let metrics = try net.node.run(["curl", "-sf", "http://127.0.0.1:10249/metrics"])
            #expect(metrics.contains("kubeproxy_sync_proxy_rules_duration_seconds"))
            #expect(metrics.contains("kubeproxy_sync_proxy_rules_last_timestamp_seconds"))
            let healthz = try net.node.run(["curl", "-sf", "http://127.0.0.1:10256/healthz"])
            #expect(healthz.contains("lastUpdated"))
            #expect(try net.node.run(["curl", "-sf", "http://127.0.0.1:10249/healthz"]).contains("ok"))

            // A connection opened before a restart keeps working after it (the rules stay in place
            // and conntrack keeps the flow's translation).
            let output = net.scripts + "/held.txt", trigger = net.scripts + "/go"
            let client = try Command.start(["ip", "netns", "exec", net.client.name, "python3", "-c", """
                import os, socket, time
                s = socket.create_connection(("10.96.0.10", 80), timeout=10)
                f = open("\(output)", "w"); f.write(s.recv(100).decode()); f.flush()
                while not os.path.exists("\(trigger)"): time.sleep(0.05)
                s.sendall(b"ping\\n"); f.write(s.recv(100).decode()); f.close()
                """], stdin: "")
            defer { kill(client, SIGKILL); Command.waitForExit(client) }
            #expect(try await eventually { ((try? String(contentsOfFile: output, encoding: .utf8)) ?? "").hasSuffix("\n") })
            kill(proxy, SIGTERM)
            Command.waitForExit(proxy)
            proxy = try Command.start(proxyArguments, stdin: "")
            #expect(try await eventually { try net.node.output(["curl", "-sf", "http://127.0.0.1:10256/healthz"]).succeeded })
            _ = FileManager.default.createFile(atPath: trigger, contents: nil)
            Command.waitForExit(client)
            let held = try String(contentsOfFile: output, encoding: .utf8).split(separator: "\n")
            #expect(held.count == 2 && held[1].hasSuffix("got ping"), "\(held)")
            // The restarted proxy found its rules and did not add its jumps twice.
            #expect(try net.saved().components(separatedBy: "-j KUBE-SERVICES").count - 1 == 4)

            try Command.run([strait, "delete", "service", "web", "-n", "default", "--store", store])
            #expect(try await eventually { try net.probe("tcp", "10.96.0.10", 80, timeout: 0.5).first?.hasPrefix("ERR") == true })

            kill(proxy, SIGTERM)
            Command.waitForExit(proxy)
            try net.node.run([strait, "proxy", "--cleanup"])
            #expect(!(try net.saved()).contains("KUBE-"))
        }
    }

    @Test func unavailableModesSayso() throws {
        // This kernel has no IPVS (scripts/vm runs the ipvs mode's tests).
        let ipvs = try Command.output([builtProduct("strait"), "proxy", "--proxy-mode", "ipvs"])
        #expect(!ipvs.succeeded && ipvs.stderr.contains("this kernel has no IPVS; see scripts/vm"), "\(ipvs.stderr)")
    }
}

import Foundation
@testable import StraitProxy
import StraitTestSupport
import Testing

@Suite struct ProxyRunnerTests {
    typealias F = Fixture

    /// A port that was free a moment ago.
    func freePort() async throws -> Int {
        let probe = ProxyHTTPServer(name: "probe", address: BindAddress(host: "127.0.0.1", port: 0)) { _, _ in .notFound }
        let port = try await probe.start()
        await probe.stop()
        return port
    }

    @Test func runsLoopAndServersUntilCancelled() async throws {
        var config = ProxyConfiguration()
        config.hostnameOverride = "node-a"
        config.metricsBindAddress = BindAddress(host: "127.0.0.1", port: try await freePort())
        config.healthzBindAddress = BindAddress(host: "127.0.0.1", port: try await freePort())
        let backend = RecordingBackend()
        let feed = ProxySourceFeed()
        let runner = ProxyRunner(config: config, backend: backend, source: feed, log: .silent, conntrack: nil,
                                 handleSignals: false)
        let task = Task { try await runner.run() }
        feed.send(.replaceAll([.service(F.service("web"))]))
        try await backend.waitFor { $0.count == 1 }

        let mode = try Command.output(["curl", "-s", "--max-time", "5", "http://\(config.metricsBindAddress!)/proxyMode"])
        #expect(mode.stdout == "iptables")
        let metrics = try Command.output(["curl", "-s", "--max-time", "5", "http://\(config.metricsBindAddress!)/metrics"])
        #expect(metrics.stdout.contains("kubeproxy_sync_proxy_rules_duration_seconds_count 1"))
        let health = try Command.output(["curl", "-s", "-w", "\n%{http_code}", "--max-time", "5",
                                         "http://\(config.healthzBindAddress!)/healthz"])
        #expect(health.stdout.hasSuffix("\n200") && health.stdout.contains("\"nodeEligible\":true"))

        task.cancel()
        try await task.value
        let after = try Command.output(["curl", "-s", "--max-time", "2", "http://\(config.metricsBindAddress!)/proxyMode"])
        #expect(after.status != 0)
    }

    @Test func aTakenPortFailsTheStart() async throws {
        let holder = ProxyHTTPServer(name: "other", address: BindAddress(host: "127.0.0.1", port: 0)) { _, _ in .notFound }
        let port = try await holder.start()
        var config = ProxyConfiguration()
        config.metricsBindAddress = BindAddress(host: "127.0.0.1", port: port)
        config.healthzBindAddress = nil
        let runner = ProxyRunner(config: config, backend: RecordingBackend(), source: ProxySourceFeed(), log: .silent,
                                 conntrack: nil, handleSignals: false)
        do {
            try await runner.run()
            Issue.record("run succeeded on a taken port")
        } catch let error as BindError {
            #expect(error.description == "metrics server cannot listen on 127.0.0.1:\(port): \(error.underlying)")
        }
        await holder.stop()
    }
}

import Foundation
import StraitDaemon
@testable import StraitProxy
import StraitTestSupport
import Testing

@Suite struct ProxyRunnerTests {
    typealias F = Fixture

    @Test func runsLoopAndServersUntilCancelled() async throws {
        var config = ProxyConfiguration()
        config.hostnameOverride = "node-a"
        config.metricsBindAddress = BindAddress(host: "127.0.0.1", port: 0)
        config.healthzBindAddress = BindAddress(host: "127.0.0.1", port: 0)
        let backend = RecordingBackend()
        let feed = ProxySourceFeed()
        let runner = ProxyRunner(config: config, options: ProxyOptions(), backend: backend, source: feed, log: .silent, conntrack: nil,
                                 handleSignals: false)
        let (listening, announce) = AsyncStream<[BindAddress]>.makeStream()
        let task = Task { try await runner.run(onListening: { announce.yield($0) }) }
        var addresses = listening.makeAsyncIterator()
        let bound = try #require(await addresses.next())
        let metricsAddress = bound[0], healthAddress = bound[1]
        #expect(metricsAddress.port != 0 && healthAddress.port != 0)
        feed.send(.replaceAll([.service(F.service("web"))]))
        try await backend.waitFor { $0.count == 1 }

        let mode = try Command.output(["curl", "-s", "--max-time", "5", "http://\(metricsAddress)/proxyMode"])
        #expect(mode.stdout == "iptables")
        let metrics = try Command.output(["curl", "-s", "--max-time", "5", "http://\(metricsAddress)/metrics"])
        #expect(metrics.stdout.contains("kubeproxy_sync_proxy_rules_duration_seconds_count{ip_family=\"IPv4\"} 1"))
        let health = try Command.output(["curl", "-s", "-w", "\n%{http_code}", "--max-time", "5",
                                         "http://\(healthAddress)/healthz"])
        #expect(health.stdout.hasSuffix("\n200") && health.stdout.contains("\"nodeEligible\":true"))

        task.cancel()
        try await task.value
        let after = try Command.output(["curl", "-s", "--max-time", "2", "http://\(metricsAddress)/proxyMode"])
        #expect(after.status != 0)
    }

    @Test func aTakenPortFailsTheStart() async throws {
        let holder = ProxyHTTPServer(name: "other", address: BindAddress(host: "127.0.0.1", port: 0)) { _, _ in .notFound }
        let port = try await holder.start()
        var config = ProxyConfiguration()
        config.metricsBindAddress = BindAddress(host: "127.0.0.1", port: port)
        config.healthzBindAddress = nil
        config.bindAddressHardFail = true
        let runner = ProxyRunner(config: config, options: ProxyOptions(), backend: RecordingBackend(), source: ProxySourceFeed(), log: .silent,
                                 conntrack: nil, handleSignals: false)
        do {
            try await runner.run()
            Issue.record("run succeeded on a taken port")
        } catch let error as BindError {
            #expect(error.description == "metrics server cannot listen on 127.0.0.1:\(port): \(error.underlying)")
        }
        await holder.stop()
    }

    struct SourceBroke: Error, CustomStringConvertible {
        var description: String { "the store went away" }
    }

    /// A part that fails stops the others (the servers close their ports) and the error names it.
    @Test func aFailingPartStopsTheProxyAndIsNamed() async throws {
        var config = ProxyConfiguration()
        config.metricsBindAddress = BindAddress(host: "127.0.0.1", port: 0)
        config.healthzBindAddress = BindAddress(host: "127.0.0.1", port: 0)
        let feed = ProxySourceFeed()
        let runner = ProxyRunner(config: config, options: ProxyOptions(), backend: RecordingBackend(), source: feed,
                                 log: .silent, conntrack: nil, handleSignals: false)
        let (listening, announce) = AsyncStream<[BindAddress]>.makeStream()
        let task = Task { try await runner.run(onListening: { announce.yield($0) }) }
        var addresses = listening.makeAsyncIterator()
        let bound = try #require(await addresses.next())
        feed.finish(throwing: SourceBroke())
        do {
            try await task.value
            Issue.record("the proxy ran on after its source failed")
        } catch let failure as DaemonPartFailure {
            #expect(failure.part == "sync loop")
            #expect("\(failure)" == "sync loop failed: the store went away")
        }
        for address in bound {
            let after = try Command.output(["curl", "-s", "--max-time", "2", "http://\(address)/healthz"])
            #expect(after.status != 0, "\(address) still answers")
        }
    }
}

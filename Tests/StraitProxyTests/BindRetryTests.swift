import Foundation
import Logging
import NIOConcurrencyHelpers
@testable import StraitProxy
import StraitTestSupport
import Testing

/// `--bind-address-hard-fail=false` (kube-proxy's default): a taken metrics or health port is
/// logged, the proxy runs on, and the server binds once the port is free.
@Suite struct BindRetryTests {
    @Test func aTakenPortIsRetriedUntilItIsFree() async throws {
        let holder = ProxyHTTPServer(name: "other", address: BindAddress(host: "127.0.0.1", port: 0)) { _, _ in
            HTTPAnswer(body: "someone else")
        }
        let port = try await holder.start()
        var config = ProxyConfiguration()
        config.metricsBindAddress = BindAddress(host: "127.0.0.1", port: port)
        config.healthzBindAddress = nil
        #expect(config.bindAddressHardFail == false)
        let lines = NIOLockedValueBox<[String]>([])
        let log = Logger.recording { line in lines.withLockedValue { $0.append(line) } }
        let feed = ProxySourceFeed()
        let runner = ProxyRunner(config: config, options: ProxyOptions(), backend: RecordingBackend(), source: feed,
                                 log: log, conntrack: nil, handleSignals: false)
        let task = Task { try await runner.run() }
        defer { task.cancel() }

        func proxyMode() throws -> String? {
            let result = try Command.output(["curl", "-s", "--max-time", "2", "http://127.0.0.1:\(port)/proxyMode"])
            return result.succeeded ? result.stdout : nil
        }
        // The run goes on: it logs the failure instead of throwing.
        var logged = false
        for _ in 0..<100 where !logged {
            logged = lines.withLockedValue { $0.contains { $0.contains("retrying every 5 s") } }
            if !logged { try await Task.sleep(for: .milliseconds(100)) }
        }
        #expect(logged)
        #expect(try proxyMode() == "someone else")

        await holder.stop()
        var answer: String?
        for _ in 0..<300 where answer != "iptables" {
            answer = try proxyMode()
            if answer != "iptables" { try await Task.sleep(for: .milliseconds(100)) }
        }
        #expect(answer == "iptables")
        task.cancel()
        try await task.value
    }
}

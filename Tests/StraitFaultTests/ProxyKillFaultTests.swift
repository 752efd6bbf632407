import Foundation
import StraitTestSupport
import Testing

/// `strait proxy` SIGKILLed at random moments while it syncs a zone flip of every Service
/// (`ZoneFlipManifests`: 2,000 Services by default). After each kill the kernel holds exactly the
/// rules of the state before the flip or after it, never a mix; a restarted proxy converges to
/// the store's state; and one TCP connection through a ClusterIP, opened before the first kill,
/// answers every exchange throughout.
///
/// Bounded by `STRAIT_FAULT_KILLS` kills per mode (default `defaultKills`, which fits the suite's
/// few minutes on a busy 2-core machine; `RELIABILITY.md` quotes runs that asked for 100). The kill moments
/// come from a seeded generator: the seed is printed, and `STRAIT_FAULT_SEED` replays a run.
@Suite(.serialized) struct ProxyKillFaultTests {
    static let suite = "ProxyKillFaultTests"
    static let defaultKills = 3
    static let environment = ProcessInfo.processInfo.environment
    static let kills = environment["STRAIT_FAULT_KILLS"].flatMap(Int.init) ?? defaultKills
    static let services = environment["STRAIT_FAULT_SERVICES"].flatMap(Int.init) ?? 2000
    /// A safety net, not a timing: the kill loop stops (and says so) after this many seconds.
    static let loopBound = Duration.seconds(environment["STRAIT_FAULT_SECONDS"].flatMap(Int.init) ?? 3600)

    @Test func iptablesProxyKilledMidSync() async throws {
        try await killLoop(mode: "iptables")
    }

    @Test func nftablesProxyKilledMidSync() async throws {
        try await killLoop(mode: "nftables")
    }

    func killLoop(mode: String) async throws {
        let seed = Self.environment["STRAIT_FAULT_SEED"].flatMap(UInt64.init) ?? UInt64.random(in: 1...UInt64.max)
        var random = SeededRandom(seed: seed)
        print("\(Self.suite) \(mode): seed \(seed) (STRAIT_FAULT_SEED=\(seed) replays these kill moments)")
        try await KillTopology.with { net in
            let store = net.scripts + "/store.db", log = net.scripts + "/proxy.log"
            let strait = builtProduct("strait")
            func apply(_ manifest: String) throws {
                let path = net.scripts + "/apply.yaml"
                try manifest.write(toFile: path, atomically: true, encoding: .utf8)
                try Command.run([strait, "apply", "-f", path, "--store", store])
            }
            let proxyArguments = ["ip", "netns", "exec", net.node.name, "sh", "-c", "exec \"$0\" \"$@\" >>\(log) 2>&1",
                                  strait, "proxy", "--proxy-mode", mode, "--store", store,
                                  "--hostname-override", "node", "--cluster-cidr", "10.244.0.0/16",
                                  "--conntrack-max-per-core=0", "--metrics-bind-address", "127.0.0.1:10249",
                                  "--healthz-bind-address", "127.0.0.1:10256"]
            let lastIP = ZoneFlipManifests.clusterIP(Self.services - 1)
            func reaches(_ state: ZoneFlipManifests.State) throws -> Bool {
                try net.probe(ZoneFlipManifests.clusterIP(0)) == state.endpoint && net.probe(lastIP) == state.endpoint
            }
            /// The rules once two reads a second apart agree.
            func settled() async throws -> RuleSnapshot? {
                var previous = try RuleSnapshot.read(net.node)
                for _ in 0..<120 {
                    try await Task.sleep(for: .seconds(1))
                    let current = try RuleSnapshot.read(net.node)
                    if current == previous { return current }
                    previous = current
                }
                return nil
            }
            func logTail() -> String {
                String(((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").suffix(1500))
            }

            try ServiceStoreTemplate.copy(services: Self.services, to: store)
            // The PIDs this test started and has not reaped yet (only those are ever signalled).
            var proxy: pid_t? = try Command.start(proxyArguments, stdin: "")
            defer { if let proxy { kill(proxy, SIGKILL); Command.waitForExit(proxy) } }

            // The two reference rule sets, from the running proxy.
            var references: [ZoneFlipManifests.State: RuleSnapshot] = [:]
            guard try await poll(seconds: 600, { try reaches(.a) }), let a = try await settled() else {
                Issue.record("the proxy never programmed state A: \(logTail())")
                return
            }
            references[.a] = a
            let liveLog = net.scripts + "/live.log", stop = net.scripts + "/stop"
            var client: pid_t? = try net.startLiveClient(ZoneFlipManifests.clusterIP(0), output: liveLog, stop: stop,
                                                         seconds: 7200)
            defer { if let client { kill(client, SIGKILL); Command.waitForExit(client) } }
            let flipStart = ContinuousClock.now
            try apply(ZoneFlipManifests.node(.b))
            guard try await poll(seconds: 600, { try reaches(.b) }) else {
                Issue.record("the proxy never programmed state B: \(logTail())")
                return
            }
            let flip = ContinuousClock.now - flipStart
            guard let b = try await settled() else {
                Issue.record("the rules of state B never settled")
                return
            }
            references[.b] = b
            #expect(a != b, "the two states have different rules")
            // Whether a fresh proxy programs the same rules as one that came from the other state is
            // checked by every restart below (a fresh start compared with these references).

            // The kill loop. A kill lands somewhere in [0, 1.5 x the flip's duration] after the store write.
            let window = flip * 1.5
            var state = ZoneFlipManifests.State.b
            var foundOld = 0, foundNew = 0, mixed = 0, restoresOutlived = 0, done = 0
            var convergence: [Duration] = []
            let loopStart = ContinuousClock.now
            for round in 1...Self.kills {
                if ContinuousClock.now - loopStart > Self.loopBound {
                    print("\(Self.suite) \(mode): stopped after \(done) kills at the \(Self.loopBound) bound")
                    break
                }
                let target = state.other
                try apply(ZoneFlipManifests.node(target))
                try await Task.sleep(for: window * random.unit())
                if let running = proxy {
                    kill(running, SIGKILL)
                    Command.waitForExit(running)
                    proxy = nil
                }
                // An iptables-restore the proxy started runs to its end (it has its whole input).
                var outlived = false
                let settledRestore = try await poll(seconds: 300) {
                    let running = try Command.run(["ip", "netns", "pids", net.node.name]).split(separator: "\n")
                        .contains { pid in
                            let command = (try? String(contentsOfFile: "/proc/\(pid)/comm", encoding: .utf8)) ?? ""
                            return command.contains("tables")
                        }
                    if running { outlived = true }
                    return !running
                }
                #expect(settledRestore, "kill \(round): an iptables-restore still runs after 300 s")
                if outlived { restoresOutlived += 1 }

                let seen = try RuleSnapshot.read(net.node)
                if seen == references[state] {
                    foundOld += 1
                } else if seen == references[target] {
                    foundNew += 1
                } else {
                    mixed += 1
                    Issue.record("""
                        kill \(round) (seed \(seed)): the rules are neither \(state) nor \(target): \
                        from \(state): \(seen.difference(from: references[state]!)); \
                        from \(target): \(seen.difference(from: references[target]!))
                        """)
                }

                let restart = ContinuousClock.now
                let restarted = try Command.start(proxyArguments, stdin: "")
                proxy = restarted
                let converged = try await poll(seconds: 600) {
                    var status: Int32 = 0
                    if waitpid(restarted, &status, WNOHANG) == restarted {
                        proxy = nil
                        throw CommandFailure(arguments: proxyArguments, output: nil, reason: "exited: \(logTail())")
                    }
                    return try RuleSnapshot.read(net.node) == references[target]
                }
                #expect(converged, "kill \(round): the restarted proxy did not program \(target): \(logTail())")
                guard converged else { break }
                convergence.append(ContinuousClock.now - restart)
                state = target
                done += 1
            }

            _ = FileManager.default.createFile(atPath: stop, contents: nil)
            if let running = client {
                Command.waitForExit(running)
                client = nil
            }
            let live = (try? String(contentsOfFile: liveLog, encoding: .utf8)) ?? ""
            let lines = live.split(separator: "\n")
            let kept = lines.filter { $0.hasPrefix("ok ") }.count
            let failures = lines.filter { $0.hasPrefix("fail") }
            #expect(failures.isEmpty, "the live connection broke: \(failures)")
            #expect(lines.last == "done" && kept > 0, "the live client ran to the end: \(lines.suffix(3))")

            let sorted = convergence.sorted()
            let label = "\(mode) mode, \(Self.services) Services"
            reportFigure(suite: Self.suite, "\(label): kills that left exactly the old or the new rules",
                         "\(foundOld + foundNew)/\(done + mixed) "
                         + "(old \(foundOld), new \(foundNew), mixed \(mixed); seed \(seed))")
            if mode == "iptables" {
                reportFigure(suite: Self.suite, "\(label): kills after which the started iptables-restore finished",
                             restoresOutlived)
            }
            reportFigure(suite: Self.suite, "\(label): restarts that converged to the store's state",
                         "\(convergence.count)/\(done + mixed)")
            if !sorted.isEmpty {
                reportFigure(suite: Self.suite, "\(label): convergence after restart, median / max",
                             "\(seconds(sorted[(sorted.count - 1) / 2])) / \(seconds(sorted.last!)) s")
            }
            reportFigure(suite: Self.suite, "\(label): one zone flip synced in (apply to probe)", "\(seconds(flip)) s")
            reportFigure(suite: Self.suite, "\(label): live TCP exchanges through 10.96.0.10 across every restart",
                         "\(kept) answered, \(failures.count) failed")
        }
    }

    func seconds(_ duration: Duration) -> String {
        String(format: "%.1f", Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18)
    }
}

/// Polls `check` every 300 ms until it is true or `seconds` have passed (a generous bound derived
/// from the operation, not a timing under test).
func poll(seconds: Int, _ check: () throws -> Bool) async throws -> Bool {
    let deadline = ContinuousClock.now + .seconds(seconds)
    while ContinuousClock.now < deadline {
        if try check() { return true }
        try await Task.sleep(for: .milliseconds(300))
    }
    return try check()
}

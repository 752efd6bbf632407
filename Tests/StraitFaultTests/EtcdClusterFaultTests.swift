import Foundation
import StraitStore
import StraitTestSupport
import Testing

/// A three-member etcd cluster (three `etcd` processes in the underlay namespace, started by the
/// test) under five `strait overlay` agents renewing short leases and a `strait proxy` watching the
/// same store, all given every member (the leader first, so the crash breaks the connections they
/// hold). The leader is SIGKILLed while Services change: no lease lost, no node re-numbered, the
/// proxy misses no change. Then the whole cluster stops for `STRAIT_ETCD_OUTAGE_SECONDS` (default
/// 60) and comes back: pods keep pinging across nodes meanwhile, and changes made right after the
/// restart reach every agent and the proxy.
@Suite(.serialized) struct EtcdClusterFaultTests {
    static let suite = "EtcdClusterFaultTests"
    static let nodeCount = 5

    @Test func leaderCrashAndFullOutage() async throws {
        let outage = ProcessInfo.processInfo.environment["STRAIT_ETCD_OUTAGE_SECONDS"].flatMap(Int.init) ?? 60
        let testStart = ContinuousClock.now
        try await withTestNamespaces(1 + 2 * Self.nodeCount) { namespaces in
            let net = try OverlayNodes(namespaces, nodes: Self.nodeCount)
            var proxy: pid_t?
            defer {
                if let proxy { kill(proxy, SIGTERM); Command.waitForExit(proxy) }
                net.stopAgents()
                net.removeDirectory()
            }
            try await TestEtcdCluster.with(namespace: net.underlay, host: "192.168.100.254") { etcd in
                do {
                    try await run(net, etcd, outage: outage, proxy: &proxy)
                } catch {
                    for node in 0..<Self.nodeCount { print("--- node \(node) log ---\n\(net.log(node))") }
                    let proxyLog = try? String(contentsOfFile: "\(net.directory)/proxy.log", encoding: .utf8)
                    print("--- proxy log ---\n\(proxyLog ?? "")")
                    for member in etcd.members {
                        let log = (try? String(contentsOfFile: member.logFile, encoding: .utf8)) ?? ""
                        print("--- etcd \(member.name) log (tail) ---\n\(log.suffix(3000))")
                    }
                    throw error
                }
            }
        }
        reportFigure(suite: Self.suite, "suite wall time", ContinuousClock.now - testStart)
    }

    /// A member left without a quorum answers a keep-alive with "etcdserver: no leader" (HTTP 503, or
    /// a stream error in a 200): the store reports an error to retry, never "lease not found" (which
    /// makes an agent lease again). On 127.0.0.1, the members on free ports below the ephemeral range.
    @Test func keepAliveWithoutQuorumIsNotALostLease() async throws {
        try await TestEtcdCluster.with { etcd in
            let store = try await openStore(url: etcd.storeURL)
            let lease = try await store.grantLease(ttl: 60)
            #expect(try await store.keepAlive(lease) > 0)
            etcd.members[1].crash()
            etcd.members[2].crash()
            // The member left steps down after an election timeout; until then it may still answer.
            var answer: StoreError?
            let deadline = ContinuousClock.now + .seconds(60)
            while answer == nil, ContinuousClock.now < deadline {
                do { try await store.keepAlive(lease) } catch let error as StoreError { answer = error }
                try await Task.sleep(for: .milliseconds(200))
            }
            let error = try #require(answer, "keep-alive without a quorum kept succeeding")
            #expect(error.code == .unavailable, "\(error)")
            reportFigure(suite: Self.suite, "keep-alive without a quorum answers", "\(error.code): \(error)")
            try await etcd.startAll()
            #expect(try await store.keepAlive(lease) > 0, "the lease is still there once the quorum is back")
            await store.close()
        }
    }

    func run(_ net: OverlayNodes, _ etcd: TestEtcdCluster, outage: Int, proxy: inout pid_t?) async throws {
        let nodes = 0..<Self.nodeCount
        var firstLeader: TestEtcd?
        try waitUntil("the cluster has a leader") { firstLeader = try etcd.leader(); return firstLeader != nil }
        let leader = try #require(firstLeader)
        let order = [leader] + etcd.members.filter { $0 !== leader }
        net.storeURL = "etcd://" + order.map { "\($0.host):\($0.clientPort)" }.joined(separator: ",")
        let watchers = StoreWatchers(etcd: etcd, underlay: net.underlay, proxyNode: net.nodes[0],
                                     storeURL: net.storeURL, directory: net.directory)

        // Five agents, a pod on each node, every node programming every other.
        for node in nodes { try net.startAgent(node) }
        var subnets: [Int: String] = [:], macs: [Int: String] = [:], pods: [Int: String] = [:]
        for node in nodes {
            try waitUntil("node \(node) writes its subnet file") { net.subnet(node) != nil }
            subnets[node] = net.subnet(node)
            guard let mac = try net.vtepMAC(node) else {
                throw CommandFailure(arguments: ["ip", "link", "show"], output: nil, reason: "node \(node) has no \(net.device)")
            }
            macs[node] = mac
            pods[node] = try net.addPod(node)
        }
        #expect(Set(subnets.values).count == Self.nodeCount, "distinct subnets: \(subnets)")
        try waitForMesh(net, subnets: subnets, macs: macs)
        for node in nodes {
            let peer = (node + 1) % Self.nodeCount
            #expect(try net.pods[node].ping(pods[peer]!), "pod \(node) → pod \(peer) before any fault")
        }

        // The proxy on node 0, watching the same store; a first Service reaches its rules.
        let proxyCommand = [builtProduct("strait"), "proxy", "--store", net.storeURL, "--hostname-override", "node0",
                            "--cluster-cidr", "10.244.0.0/16", "--conntrack-max-per-core=0",
                            "--metrics-bind-address", "127.0.0.1:10249", "--healthz-bind-address", "127.0.0.1:10256"]
        proxy = try Command.start(["ip", "netns", "exec", net.nodes[0].name, "sh", "-c",
                                   "exec \(proxyCommand.joined(separator: " ")) >>\(net.directory)/proxy.log 2>&1"],
                                  stdin: "")
        try watchers.apply(StoreWatchers.manifest("web", clusterIP: "10.96.1.1", endpoint: "10.244.100.1"))
        try waitUntil("the proxy programs web", seconds: 60) {
            StoreWatchers.routes(try watchers.natRules(), clusterIP: "10.96.1.1", to: "10.244.100.1")
        }
        let keysBefore = try watchers.subnetKeys()
        #expect(keysBefore.count == Self.nodeCount, "\(keysBefore)")

        // The leader crashes; Services change while the others elect a new one.
        let crashed = ContinuousClock.now
        leader.crash()
        let electing = Task.detached { () -> Duration? in
            for _ in 0..<600 {
                if (try? etcd.leader()) != nil { return ContinuousClock.now - crashed }
                try? await Task.sleep(for: .milliseconds(50))
            }
            return nil
        }
        var changes: [(clusterIP: String, endpoint: String)] = []
        var refused = 0
        for index in 2...6 {
            let change = (clusterIP: "10.96.1.\(index)", endpoint: "10.244.100.\(index)")
            refused += try watchers.apply(StoreWatchers.manifest("svc\(index)", clusterIP: change.clusterIP,
                                                                 endpoint: change.endpoint))
            changes.append(change)
        }
        // web's endpoint moves: the proxy must drop the old one, not only add.
        refused += try watchers.apply(StoreWatchers.manifest("web", clusterIP: "10.96.1.1", endpoint: "10.244.100.99"))
        changes.append((clusterIP: "10.96.1.1", endpoint: "10.244.100.99"))
        let appliedIn = ContinuousClock.now - crashed
        let election = await electing.value
        reportFigure(suite: Self.suite, "leader crash: new leader after",
                     election.map { "\($0)" } ?? "none within 30 s")
        reportFigure(suite: Self.suite, "leader crash: changes applied from the crash on (in), attempts refused",
                     "\(changes.count) (\(appliedIn)), \(refused)")
        #expect(election != nil, "the two members left elect a leader")

        try waitUntil("the proxy has every change made during the election", seconds: 60) {
            let rules = try watchers.natRules()
            return changes.allSatisfy { StoreWatchers.routes(rules, clusterIP: $0.clusterIP, to: $0.endpoint) }
                && !rules.contains("--to-destination 10.244.100.1:8080")
        }
        reportFigure(suite: Self.suite, "leader crash: changes missed by the proxy", 0)
        // A new leader extends every lease by its TTL; a lease that ends later than that was renewed
        // by its agent after the election, on the members left.
        let elected = election ?? .seconds(30)
        try waitUntil("every agent renews its lease after the election", seconds: 90) {
            try renewedSince(keysBefore, watchers, ContinuousClock.now - crashed - elected)
        }
        try expectNothingLost(net, watchers, keysBefore, subnets, macs, "after the leader crash")
        try await leader.start()  // back to three members before the full outage

        // The whole cluster stops; pods ping across nodes all along.
        let pingers = try nodes.map { node in
            let peer = (node + 1) % Self.nodeCount
            return try Pinger.start(from: node, to: peer, in: net.pods[node], address: pods[peer]!,
                                    directory: net.directory)
        }
        etcd.stopAll()
        try await Task.sleep(for: .seconds(outage))
        try await etcd.startAll()
        let restarted = ContinuousClock.now
        // Right after the restart: a new Service, and a new node's lease.
        try watchers.apply(StoreWatchers.manifest("after", clusterIP: "10.96.1.50", endpoint: "10.244.100.50"))
        let newcomer = #"{"PublicIP":"192.168.100.77","BackendType":"vxlan","#
            + #""BackendData":{"VNI":1,"VtepMAC":"02:00:00:00:00:77"}}"#
        try watchers.put("/strait/network/subnets/10.244.250.0-24", newcomer)
        try waitUntil("the proxy catches up after the outage", seconds: 60) {
            StoreWatchers.routes(try watchers.natRules(), clusterIP: "10.96.1.50", to: "10.244.100.50")
        }
        for node in nodes {
            try waitUntil("node \(node) programs the node that joined after the outage", seconds: 60) {
                try net.programs(node, subnet: "10.244.250.0/24", mac: "02:00:00:00:00:77", publicIP: "192.168.100.77")
            }
        }
        reportFigure(suite: Self.suite, "full outage: seconds stopped; catch-up of 5 agents and the proxy took",
                     "\(outage); \(ContinuousClock.now - restarted)")
        var lost = 0, sent = 0
        for pinger in pingers {
            let counts = try pinger.stop()
            sent += counts.sent
            lost += counts.sent - counts.received
            // ping stops on SIGINT without waiting for the echo in flight: at most that one is unanswered.
            #expect(counts.sent - counts.received <= 1, "pod \(pinger.from) → pod \(pinger.to): \(counts)")
        }
        reportFigure(suite: Self.suite, "full outage: pings sent between pods on 5 nodes, unanswered",
                     "\(sent), \(lost)")
        try waitUntil("every agent renews its lease after the restart", seconds: 90) {
            try renewedSince(keysBefore, watchers, ContinuousClock.now - restarted)
        }
        try expectNothingLost(net, watchers, keysBefore, subnets, macs, "after the full outage")
        for (node, pid) in net.agentPIDs { #expect(kill(pid, 0) == 0, "agent \(node) still runs") }
        #expect(kill(try #require(proxy), 0) == 0, "the proxy still runs")
    }

    /// Whether every lease ends more than TTL + 2 s after a moment `elapsed` ago — a keep-alive
    /// reached etcd since then (the new leader's own extension ends at most TTL after it).
    func renewedSince(_ keys: Set<StoreWatchers.SubnetKey>, _ watchers: StoreWatchers,
                      _ elapsed: Duration) throws -> Bool {
        try keys.allSatisfy { key in
            guard let left = try watchers.secondsLeft(key.leaseID) else { return false }
            return elapsed + .seconds(left) > .seconds(64 + 2)
        }
    }

    /// Same lease keys bound to the same store leases, same subnets and VTEP MACs, no agent that
    /// had to lease again.
    func expectNothingLost(_ net: OverlayNodes, _ watchers: StoreWatchers, _ keysBefore: Set<StoreWatchers.SubnetKey>,
                           _ subnets: [Int: String], _ macs: [Int: String], _ when: String) throws {
        let keys = try watchers.subnetKeys().filter { !$0.key.hasSuffix("10.244.250.0-24") }
        #expect(keys == keysBefore, "no lease lost \(when)")
        for node in 0..<Self.nodeCount {
            #expect(net.subnet(node) == subnets[node], "node \(node) keeps its subnet \(when)")
            #expect(try net.vtepMAC(node) == macs[node], "node \(node) keeps its VTEP MAC \(when)")
            #expect(!net.log(node).contains("leasing again"), "node \(node) never leased again \(when)")
        }
        reportFigure(suite: Self.suite, "\(when): leases lost, nodes re-numbered",
                     "\(keysBefore.subtracting(keys).count), "
                     + "\((0..<Self.nodeCount).filter { net.subnet($0) != subnets[$0] }.count)")
    }

    func waitForMesh(_ net: OverlayNodes, subnets: [Int: String], macs: [Int: String]) throws {
        for node in 0..<Self.nodeCount {
            for peer in 0..<Self.nodeCount where peer != node {
                try waitUntil("node \(node) programs node \(peer)", seconds: 60) {
                    try net.programs(node, subnet: subnets[peer]!, mac: macs[peer]!, publicIP: net.publicIP(peer))
                }
            }
        }
    }
}

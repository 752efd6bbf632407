import Foundation
import StraitTestSupport
import Testing

/// Pods added and deleted through the built `strait-cni` by 16 concurrent runtime calls, some
/// SIGKILLed at a random moment (a seeded plan; the seed is printed, `STRAIT_FAULT_SEED` replays it).
/// A killed ADD is followed by no DEL and a killed DEL is not retried — the pod's namespace just
/// goes, as when the runtime itself dies — so only GC can clean up after them. Then: GC with the
/// live pods as valid attachments leaves exactly their addresses, veths and NAT chains; deleting
/// them and a GC with none valid brings the node back to how it was before the churn.
///
/// `STRAIT_CHURN_PODS` sets the pod count: 500 by default, which keeps the test near 3 minutes on a busy 2-core
/// machine; the 2,000 (`STRAIT_CHURN_PODS=2000`) took 11 minutes there (RELIABILITY.md quotes that run).
@Suite(.serialized) struct CNIChurnFaultTests {
    static let suite = "CNIChurnFaultTests"
    static let concurrentCalls = 16
    /// One call in twenty is killed.
    static let killShare = 0.05
    /// A kill lands this long after the call starts, at most (an ADD takes tens of milliseconds here).
    static let latestKill = 60

    /// What one pod goes through: ADD, then (unless it stays) DEL; each call killed or not.
    struct PodPlan: Sendable {
        var pod: ChurnNode.Pod
        var stays: Bool
        var killAdd: Duration?
        var killDelete: Duration?
    }

    static func plan(pods: Int, seed: UInt64) -> [PodPlan] {
        var random = SeededRandom(seed: seed)
        func kill() -> Duration? {
            Double.random(in: 0..<1, using: &random) < killShare
                ? .milliseconds(Int.random(in: 0..<latestKill, using: &random)) : nil
        }
        return (0..<pods).map { index in
            // Every fifth pod maps a hostPort of its own; every tenth stays to the end.
            let pod = ChurnNode.Pod(index: index, hostPort: index % 5 == 0 ? 10_000 + index : nil)
            return PodPlan(pod: pod, stays: index % 10 == 0, killAdd: kill(), killDelete: kill())
        }
    }

    /// What the churn left: the pods alive, and every call's outcome.
    final class Tally: @unchecked Sendable {
        private let lock = NSLock()
        private(set) var live: [ChurnNode.Pod] = []
        private(set) var calls = 0, killed = 0, killsTooLate = 0
        private(set) var failures: [String] = []

        func record(_ command: String, _ plan: PodPlan, _ outcome: ChurnNode.Outcome, planned: Bool) {
            lock.withLock {
                calls += 1
                switch outcome {
                case .killed: killed += 1
                case .succeeded: if planned { killsTooLate += 1 }
                case .failed(let status, let error):
                    failures.append("\(command) \(plan.pod.containerID): status \(status): \(error)")
                }
            }
        }

        func keep(_ pod: ChurnNode.Pod) { lock.withLock { live.append(pod) } }
    }

    /// One pod's life on a runtime thread.
    static func run(_ plan: PodPlan, on node: ChurnNode, _ tally: Tally) throws {
        let pod = plan.pod
        try node.addNamespace(pod)
        let added = try node.call("ADD", pod: pod, config: node.config(for: pod), killAfter: plan.killAdd)
        tally.record("ADD", plan, added, planned: plan.killAdd != nil)
        guard added == .succeeded else {
            node.deleteNamespace(pod)
            return
        }
        if plan.stays {
            tally.keep(pod)
            return
        }
        let deleted = try node.call("DEL", pod: pod, config: node.config(for: pod), killAfter: plan.killDelete)
        tally.record("DEL", plan, deleted, planned: plan.killDelete != nil)
        node.deleteNamespace(pod)
    }

    /// Runs the plans on `concurrentCalls` threads (runtime calls block; Swift's pool has 2 here).
    static func churn(_ plans: [PodPlan], on node: ChurnNode) async -> (Tally, [String]) {
        let tally = Tally()
        let next = NSLock()
        nonisolated(unsafe) var index = 0
        nonisolated(unsafe) var errors: [String] = []
        await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
            let group = DispatchGroup()
            for _ in 0..<concurrentCalls {
                group.enter()
                Thread {
                    while true {
                        let mine: Int? = next.withLock {
                            guard index < plans.count else { return nil }
                            defer { index += 1 }
                            return index
                        }
                        guard let mine else { break }
                        do { try run(plans[mine], on: node, tally) } catch {
                            next.withLock { errors.append("\(plans[mine].pod.containerID): \(error)") }
                        }
                    }
                    group.leave()
                }.start()
            }
            group.notify(queue: .global()) { done.resume() }
        }
        return (tally, errors)
    }

    @Test func killedCallsLeaveNothingGCCannotCollect() async throws {
        let podCount = ProcessInfo.processInfo.environment["STRAIT_CHURN_PODS"].flatMap(Int.init) ?? 500
        let seed = SeededRandom.seedFromEnvironment()
        reportFigure(suite: Self.suite, "seed (STRAIT_FAULT_SEED)", seed)
        let plans = Self.plan(pods: podCount, seed: seed)
        try await withTestNamespaces(1) { namespaces in
            let node = ChurnNode(node: namespaces[0])
            defer {
                for plan in plans { node.deleteNamespace(plan.pod) }
                node.removeDataDir()
            }
            // A first pod added and deleted: the bridge and the NAT tables exist from here on, and
            // this is the state the node must come back to.
            let warmUp = ChurnNode.Pod(index: 999_999, hostPort: 9999)
            try node.addNamespace(warmUp)
            #expect(try node.call("ADD", pod: warmUp, config: node.config(for: warmUp)) == .succeeded)
            #expect(try node.call("DEL", pod: warmUp, config: node.config(for: warmUp)) == .succeeded)
            node.deleteNamespace(warmUp)
            try waitUntil("the warm-up pod's veth is gone") { try node.hostVeths().isEmpty }
            let baseline = try node.kernelState()

            let started = ContinuousClock.now
            let (tally, errors) = await Self.churn(plans, on: node)
            let churnTime = ContinuousClock.now - started
            #expect(errors.isEmpty, "the harness failed: \(errors.prefix(5))")
            #expect(tally.failures.isEmpty, "calls that failed on their own: \(tally.failures.prefix(5))")
            let live = tally.live
            reportFigure(suite: Self.suite, "pods, concurrent runtime calls", "\(podCount), \(Self.concurrentCalls)")
            reportFigure(suite: Self.suite, "runtime calls made", tally.calls)
            reportFigure(suite: Self.suite, "calls SIGKILLed mid-way (planned kills that landed too late)",
                         "\(tally.killed) (\(tally.killsTooLate))")
            reportFigure(suite: Self.suite, "pods alive at the end", live.count)
            reportFigure(suite: Self.suite, "churn wall time", churnTime)

            // What the killed calls left behind, before GC (the kernel removes a deleted namespace's
            // veth pair asynchronously: wait until no veth of a gone pod's namespace is going away).
            let liveIDs = Set(live.map(\.containerID))
            let liveVeths = Set(live.map(\.hostVeth))
            var veths = try node.hostVeths()
            try waitUntil("host veths settle after namespace deletion", seconds: 60) {
                let now = try node.hostVeths()
                defer { veths = now }
                return now == veths
            }
            let leakedLeases = try node.leases().keys.filter { !liveIDs.contains($0) }.count
            let nat = try node.natChains()
            let liveChainIDs = Set(live.map(\.chainID))
            let leakedHostPorts = nat.hostPort.subtracting(liveChainIDs).count
            let leakedMasquerades = nat.masquerade.subtracting(liveChainIDs).count
            reportFigure(suite: Self.suite,
                         "left by killed calls before GC: leases, host veths, hostPort chains, masquerade chains",
                         "\(leakedLeases), \(veths.subtracting(liveVeths).count), "
                         + "\(leakedHostPorts), \(leakedMasquerades)")

            // GC with the live pods as the valid attachments.
            let gcStarted = ContinuousClock.now
            #expect(try node.call("GC", pod: nil, config: node.config(validAttachments: live)) == .succeeded)
            reportFigure(suite: Self.suite, "GC wall time", ContinuousClock.now - gcStarted)
            let leases = try node.leases()
            #expect(Set(leases.keys) == liveIDs, "every address is free or held by a live pod")
            let addresses = try node.leasedAddresses()
            #expect(Set(addresses).count == addresses.count, "no address leased twice")
            #expect(try node.hostVeths() == liveVeths, "no host veth but the live pods'")
            let natAfter = try node.natChains()
            let liveHostPorts = Set(live.filter { $0.hostPort != nil }.map(\.chainID))
            #expect(natAfter.hostPort == liveHostPorts, "hostPort chains: the live pods'")
            #expect(natAfter.masquerade == liveChainIDs, "masquerade chains: the live pods'")
            // The live pods still answer on their addresses across the bridge.
            for pod in live.prefix(3) {
                let address = try #require(leases[pod.containerID])
                #expect(try node.node.ping(address), "live pod \(pod.containerID) answers at \(address)")
            }

            // The live pods deleted, and a GC with nothing valid: the node as before the churn.
            for pod in live {
                #expect(try node.call("DEL", pod: pod, config: node.config(for: pod)) == .succeeded)
                node.deleteNamespace(pod)
            }
            #expect(try node.call("GC", pod: nil, config: node.config(validAttachments: [])) == .succeeded)
            #expect(try node.leases().isEmpty)
            try waitUntil("the live pods' veths are gone", seconds: 60) { try node.hostVeths().isEmpty }
            let final = try node.kernelState()
            #expect(final == baseline, "the node is back as it was:\n--- before\n\(baseline)\n--- after\n\(final)")
        }
    }
}

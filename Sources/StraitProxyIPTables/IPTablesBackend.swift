#if canImport(Glibc)
import Glibc
#endif
import StraitModel
import StraitProxy

/// What one sync wrote, for logs, metrics and tests.
public struct IPTablesSyncSummary: Sendable, Hashable {
    public var full: Bool
    /// Service ports whose chains were rewritten.
    public var rewrittenPorts: Int
    /// Whether the shared dispatch chains (nat `KUBE-SERVICES`/`KUBE-NODEPORTS`) and the filter chains were rewritten.
    public var rewroteDispatch: Bool
    public var rewroteFilter: Bool
    public var deletedChains: Int
    /// Lines of `iptables-restore` input (0 when nothing changed and nothing ran).
    public var lines: Int
}

/// The iptables mode: kube-proxy's rule model (semantics §2), written with one
/// `iptables-restore --noflush` per sync (run on a thread of its own), so each table changes atomically.
///
/// A partial sync (with `old`) rewrites only the chains of the changed service ports, plus the shared
/// dispatch chains when a port's lines in them changed (an endpoint change leaves them alone).
/// A full sync rewrites everything; the first one (or the one after a failure) also reads the
/// tables back to delete chains left from an earlier run and to add the jumps from the built-in
/// chains only where they are missing.
public actor IPTablesBackend: ProxyBackend {
    public nonisolated let mode = ProxyMode.iptables
    public nonisolated let tools: IPTablesRestore
    public let options: IPTablesRuleOptions

    /// What the kernel holds since the last successful sync; nil before it or after a failure.
    private var programmed: ServiceTable?
    private var chains: [ServicePortName: [String]] = [:]
    private var dispatch: [ServicePortName: IPTablesDispatch] = [:]
    /// Rules in each port's own nat chains, for kube-proxy's `sync_proxy_rules_iptables_total`.
    private var chainRuleCounts: [ServicePortName: Int] = [:]
    public private(set) var lastSync: IPTablesSyncSummary?

    /// Endpoints above which per-endpoint comments are left out (kube-proxy's large-cluster mode).
    public static let largeClusterEndpoints = 1000

    /// kube-proxy's iptables metrics of this backend's family; nil records nothing (tests).
    public nonisolated let metrics: ProxyMetrics.Family?

    public init(options: IPTablesRuleOptions = IPTablesRuleOptions(), tools: IPTablesRestore,
                metrics: ProxyMetrics.Family? = nil) {
        self.options = options
        self.tools = tools
        self.metrics = metrics
    }

    public func sync(from old: ServiceTable?, to new: ServiceTable) async throws {
        do {
            try await syncRules(from: old, to: new)
        } catch {
            // The tables may hold either state (filter and nat commit separately): read them back next time.
            programmed = nil
            chains = [:]
            dispatch = [:]
            chainRuleCounts = [:]
            throw error
        }
    }

    private func syncRules(from old: ServiceTable?, to new: ServiceTable) async throws {
        let cold = programmed == nil
        let full = old == nil || cold
        var options = self.options
        let endpointCount = new.ports.values.reduce(0) { $0 + $1.allEndpoints.count }
        options.endpointComments = endpointCount <= Self.largeClusterEndpoints

        var kernelChains: Set<String> = []
        var presentJumps: Set<IPTablesRules.Jump> = []
        if cold {
            let saved = IPTablesSave(try await tools.save())
            kernelChains = Set(saved.chains(in: "nat").filter { IPTablesChainName.isServiceChain($0) })
            presentJumps = Set(IPTablesRules.jumps.filter { saved.hasJump($0) })
        }

        let upserted: [ServicePortEntry]
        let removed: [ServicePortName]
        if full {
            upserted = new.sortedEntries
            removed = chains.keys.filter { new.ports[$0] == nil }
        } else {
            (upserted, removed) = new.changedPorts(since: old!)
        }

        // The chain rules go straight into bytes as each port renders (10,000 ports x 10 endpoints is
        // 430,000 lines, 35 MB): no second copy as strings. Declarations are collected apart, sorted.
        var chainRules = RestoreBuffer(capacity: full ? upserted.count * 1200 : 4096)
        var natDeclarations: [String] = []
        var deleted: Set<String> = []
        var dispatchChanged = full
        var filterChanged = full
        for entry in upserted {
            // A Service without a cluster IP of this family has no rules here (kube-proxy's
            // per-family proxier ignores it).
            let rules = entry.plan(for: options.family).map { IPTablesRules.render($0, options) } ?? .none
            let previous = chains[entry.name] ?? []
            if !previous.isEmpty {
                let kept = Set(rules.chains)
                deleted.formUnion(previous.filter { !kept.contains($0) })
            }
            natDeclarations.append(contentsOf: rules.chains)
            for rule in rules.chainRules { chainRules.line(rule) }
            chainRuleCounts[entry.name] = rules.chainRules.isEmpty ? nil : rules.chainRules.count
            let before = dispatch[entry.name]
            if before?.natServices != rules.dispatch.natServices || before?.natNodePorts != rules.dispatch.natNodePorts {
                dispatchChanged = true
            }
            if before?.filter != rules.dispatch.filter { filterChanged = true }
            chains[entry.name] = rules.chains.isEmpty ? nil : rules.chains
            dispatch[entry.name] = rules == .none ? nil : rules.dispatch
        }
        for name in removed {
            deleted.formUnion(chains.removeValue(forKey: name) ?? [])
            chainRuleCounts[name] = nil
            if let gone = dispatch.removeValue(forKey: name) {
                if !gone.natServices.isEmpty || !gone.natNodePorts.isEmpty { dispatchChanged = true }
                if !gone.filter.isEmpty { filterChanged = true }
            }
        }
        if cold {
            let live = Set(chains.values.joined())
            deleted.formUnion(kernelChains.subtracting(live))
        }

        let names = (dispatchChanged || filterChanged) ? dispatch.keys.sorted() : []
        let missingJumps = cold ? IPTablesRules.jumps.filter { !presentJumps.contains($0) }.reversed() : []
        var head = RestoreBuffer(capacity: dispatchChanged ? names.count * 300 + natDeclarations.count * 30 : 4096)
        if filterChanged {
            head.line("*filter")
            for chain in IPTablesRules.filterBaseChains.sorted() { head.line(":\(chain) - [0:0]") }
            for jump in missingJumps where jump.table == "filter" { head.line("-I \(jump.chain) \(jump.rule)") }
            for name in names { for rule in dispatch[name]!.filter { head.line(rule) } }
            for rule in IPTablesRules.filterForwardRules(options) { head.line(rule) }
            head.line("COMMIT")
        }
        var tail = RestoreBuffer(capacity: deleted.count * 30 + 16)
        let writesNAT = full || dispatchChanged || !natDeclarations.isEmpty || !deleted.isEmpty
        if writesNAT {
            head.line("*nat")
            // Declarations sorted by name: iptables-nft-restore takes 2-3x as long on the same chains
            // declared in another order (measured: 1,000 services x 10 endpoints, 1.5 s against 3.5-5.5 s).
            var declared = natDeclarations + deleted
            natDeclarations = []
            if full {
                declared += IPTablesRules.natBaseChains
            } else if dispatchChanged {
                declared += [IPTablesChainName.services, IPTablesChainName.nodePorts]
            }
            declared.sort()
            for chain in declared { head.line(":\(chain) - [0:0]") }
            if full { for rule in IPTablesRules.natBaseRules(options) { head.line(rule) } }
            for jump in missingJumps where jump.table == "nat" { head.line("-I \(jump.chain) \(jump.rule)") }
            if dispatchChanged {
                for name in names { for rule in dispatch[name]!.natServices { head.line(rule) } }
                for rule in IPTablesRules.nodePortsTail(options) { head.line(rule) }
                for name in names { for rule in dispatch[name]!.natNodePorts { head.line(rule) } }
            }
            for chain in deleted.sorted() { tail.line("-X \(chain)") }
            tail.line("COMMIT")
        }
        let lines = head.lines + (writesNAT ? chainRules.lines + tail.lines : 0)
        if lines > 0 {
            do {
                try await tools.restore(writesNAT ? head.bytes + chainRules.bytes + tail.bytes : head.bytes)
            } catch {
                metrics?.iptablesRestoreFailed(partial: !full)
                throw error
            }
        }
        programmed = new
        recordRuleCounts(chainRulesWritten: writesNAT ? chainRules.lines : 0, natBaseWritten: full,
                         dispatchWritten: dispatchChanged, filterWritten: filterChanged)
        lastSync = IPTablesSyncSummary(full: full, rewrittenPorts: upserted.count, rewroteDispatch: dispatchChanged,
                                       rewroteFilter: filterChanged, deletedChains: deleted.count, lines: lines)
    }

    /// kube-proxy's rule counts per table: the rules in Strait's chains (the jumps from the built-in
    /// chains aside, as kube-proxy counts them), and those the last sync wrote.
    private func recordRuleCounts(chainRulesWritten: Int, natBaseWritten: Bool, dispatchWritten: Bool,
                                  filterWritten: Bool) {
        guard let metrics else { return }
        let natBase = IPTablesRules.natBaseRules(options).count
        let filter = dispatch.values.reduce(0) { $0 + $1.filter.count }
            + IPTablesRules.filterForwardRules(options).count
        let natDispatch = dispatch.values.reduce(0) { $0 + $1.natServices.count + $1.natNodePorts.count }
            + IPTablesRules.nodePortsTail(options).count
        let nat = chainRuleCounts.values.reduce(0, +) + natDispatch + natBase
        metrics.setIPTablesRules(table: "filter", total: filter, lastSync: filterWritten ? filter : 0)
        metrics.setIPTablesRules(table: "nat", total: nat, lastSync: chainRulesWritten
                                 + (natBaseWritten ? natBase : 0)
                                 + (dispatchWritten ? natDispatch : 0))
    }

    /// Removes every chain Strait made (the fixed `KUBE-…` chains and the per-service ones) and the
    /// jumps to them from the built-in chains; every other rule and chain stays.
    /// Equivalent: `strait proxy --cleanup`.
    public func cleanup() async throws {
        programmed = nil
        chains = [:]
        dispatch = [:]
        chainRuleCounts = [:]
        let saved = IPTablesSave(try await tools.save())
        let input = saved.cleanupInput()
        if !input.isEmpty { try await tools.restore([Array(input.utf8)]) }
    }
}

/// `iptables-restore` input as bytes, a line at a time, kept in parts of about `partSize` bytes: a
/// 35 MB full sync then never grows one array by doubling (which briefly held 24 + 48 MB at 10,000
/// services) and the parts go to the child's stdin one after another as they are.
struct RestoreBuffer {
    static let partSize = 1 << 20
    private(set) var parts: [[UInt8]] = []
    private(set) var lines = 0
    private var current: [UInt8] = []

    init(capacity: Int) { current.reserveCapacity(min(capacity, Self.partSize)) }

    mutating func line(_ text: String) {
        current.append(contentsOf: text.utf8)
        current.append(UInt8(ascii: "\n"))
        lines += 1
        if current.count >= Self.partSize - 4096 {
            parts.append(current)
            current = []
            current.reserveCapacity(Self.partSize)
        }
    }

    /// Every part, in order (the last one possibly short).
    var bytes: [[UInt8]] { current.isEmpty ? parts : parts + [current] }
}

/// The parsed output of `iptables-save`: per table, its chains and its `-A` rules.
struct IPTablesSave {
    private(set) var tables: [String: (chains: [String], rules: [(chain: String, spec: String)])] = [:]

    static let builtinChains: Set<String> = ["PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"]
    static let fixedChains: [String: Set<String>] = [
        "nat": Set(IPTablesRules.natBaseChains),
        "filter": Set(IPTablesRules.filterBaseChains),
    ]

    init(_ text: String) {
        var table = ""
        for raw in text.split(separator: "\n") {
            if raw.hasPrefix("*") {
                table = String(raw.dropFirst())
                tables[table] = ([], [])
            } else if raw.hasPrefix(":") {
                let name = raw.dropFirst().prefix { $0 != " " }
                tables[table]?.chains.append(String(name))
            } else if raw.hasPrefix("-A ") {
                let rest = raw.dropFirst(3)
                let chain = rest.prefix { $0 != " " }
                tables[table]?.rules.append((String(chain), String(rest.dropFirst(chain.count + 1))))
            }
        }
    }

    func chains(in table: String) -> [String] { tables[table]?.chains ?? [] }

    /// Whether a built-in chain already jumps where `jump` would (whatever the rule's exact spelling).
    func hasJump(_ jump: IPTablesRules.Jump) -> Bool {
        (tables[jump.table]?.rules ?? []).contains { $0.chain == jump.chain && $0.spec.hasSuffix("-j \(jump.target)") }
    }

    static func isOurs(_ chain: String, table: String) -> Bool {
        (fixedChains[table]?.contains(chain) ?? false) || (table == "nat" && IPTablesChainName.isServiceChain(chain))
    }

    /// The restore input that flushes and deletes Strait's chains and deletes the built-in chains'
    /// jumps to them. A chain some foreign rule still jumps to is flushed but kept, so the restore
    /// cannot fail on it.
    func cleanupInput() -> String {
        var text = ""
        for table in tables.keys.sorted() {
            let (chains, rules) = tables[table]!
            let ours = chains.filter { Self.isOurs($0, table: table) }
            if ours.isEmpty { continue }
            let ourSet = Set(ours)
            func target(_ spec: String) -> String? {
                let words = spec.split(separator: " ")
                guard let at = words.lastIndex(of: "-j"), at + 1 < words.count else { return nil }
                return String(words[at + 1])
            }
            var jumps: [(String, String)] = []
            var kept: Set<String> = []
            for rule in rules where !ourSet.contains(rule.chain) {
                guard let target = target(rule.spec), ourSet.contains(target) else { continue }
                if Self.builtinChains.contains(rule.chain) { jumps.append((rule.chain, rule.spec)) } else { kept.insert(target) }
            }
            text += "*\(table)\n"
            for chain in ours { text += ":\(chain) - [0:0]\n" }
            for (chain, spec) in jumps { text += "-D \(chain) \(spec)\n" }
            for chain in ours where !kept.contains(chain) { text += "-X \(chain)\n" }
            text += "COMMIT\n"
        }
        return text
    }
}

import StraitModel
import StraitNFT
import StraitProxy
import Testing
@testable import StraitProxyNFTables

/// The shared shape chains (`SharedShape`) against the in-memory kernel: a chain per pool size, created
/// when a first port needs it and deleted after the last element going to it, the family's masquerade
/// decision as their first rule, and the ports that keep chains of their own.
@Suite("nftables mode shared shape chains")
struct NFTablesSharedShapeTests {
    let kernel = FakeNFTKernel()
    let table = Plans.layout.table

    func backend(_ options: ProxyOptions = Plans.options) -> NFTablesBackend {
        NFTablesBackend(family: .ipv4, options: options, kernel: kernel)
    }

    func changes(_ backend: NFTablesBackend) async -> [Transaction.Change] { await backend.lastTransaction.changes }

    @Test("a new pool size creates its shape chain before the verdict element that moves to it; the old one goes after")
    func poolSizeChanges() async throws {
        let backend = self.backend()
        let three = Plans.table(Plans.clusterIP(endpoints: Plans.endpoints(3)))
        let four = Plans.table(Plans.clusterIP(endpoints: Plans.endpoints(4)))
        try await backend.sync(from: nil, to: three)
        try await backend.sync(from: three, to: four)
        let tx = await changes(backend)
        let key: [Datum] = ["10.96.0.10", .proto(.tcp), .port(80)]
        let addChain = try #require(tx.firstIndex(of: .add(.chain(Chain(table: table, name: "pool-size-4")))))
        let oldVerdict = try #require(tx.firstIndex(of: .delete(.elements(SetReference(Plans.layout.serviceIPs),
            [Element(key, .verdict(.goto("pool-size-3")))]))), "\(tx)")
        let newVerdict = try #require(tx.firstIndex {
            if case .add(.elements(let set, let elements)) = $0 {
                set.name == "service-ips" && elements.contains(Element(key, .verdict(.goto("pool-size-4"))))
            } else { false }
        }, "\(tx)")
        let deleteChain = try #require(tx.firstIndex(of: .delete(.chain(Chain(table: table, name: "pool-size-3")))))
        #expect(addChain < newVerdict && oldVerdict < deleteChain && newVerdict < deleteChain, "\(tx)")
        // The new slot is one element; the three that stayed are untouched.
        let slots = tx.compactMap { change -> [Element]? in
            if case .add(.elements(let set, let elements)) = change, set.name == "cluster-endpoints" { elements }
            else { nil }
        }.flatMap { $0 }
        #expect(slots.map(\.key) == [Element.Fields(key + [.integer(3)])], "\(tx)")
        #expect(!tx.contains { if case .delete(.elements(let set, _)) = $0 { set.name == "cluster-endpoints" }
                               else { false } })

        let contents = try #require(try kernel.list(table))
        #expect(contents.chain("pool-size-3") == nil)
        #expect(contents.rules(in: "pool-size-4").contains {
            $0.expressions.contains(.numgen(.random, modulus: 4, dreg: .reg32(3)))
        })
        try await backend.sync(from: nil, to: four)
        #expect(await backend.lastTransaction.isEmpty)
    }

    @Test("a shape chain stays while another port goes to it, and goes with the last one")
    func shapeChainSharedUntilLastReference() async throws {
        let backend = self.backend()
        let web = Plans.clusterIP(endpoints: Plans.endpoints(2))
        let dns = Plans.clusterIP(Plans.dns, ip: "10.96.0.53", port: 53, endpoints: Plans.endpoints(2, from: 5))
        let both = Plans.table(web, dns)
        try await backend.sync(from: nil, to: both)
        let onlyDNS = Plans.table(dns)
        try await backend.sync(from: both, to: onlyDNS)
        #expect(await backend.lastTransaction.onlyElements)
        #expect(try kernel.list(table)?.chain("pool-size-2") != nil)

        // dns grows to 3 endpoints: nobody goes to pool-size-2 any more.
        let grown = Plans.table(Plans.clusterIP(Plans.dns, ip: "10.96.0.53", port: 53,
                                                endpoints: Plans.endpoints(3, from: 5)))
        try await backend.sync(from: onlyDNS, to: grown)
        let contents = try #require(try kernel.list(table))
        #expect(contents.chain("pool-size-2") == nil && contents.chain("pool-size-3") != nil)
        #expect(contents.chains.filter { $0.name.hasPrefix("pool-size-") }.count == 1)

        // The last port goes: its elements first, then the chain.
        try await backend.sync(from: grown, to: Plans.table())
        let tx = await changes(backend)
        let deleteChain = try #require(tx.firstIndex(of: .delete(.chain(Chain(table: table, name: "pool-size-3")))))
        let lastElementDelete = try #require(tx.lastIndex { if case .delete(.elements) = $0 { true } else { false } })
        #expect(lastElementDelete < deleteChain)
        let empty = try #require(try kernel.list(table))
        #expect(!empty.chains.contains { $0.name.hasPrefix("pool-size-") })
        #expect(empty.elements["cluster-endpoints"] == [] && empty.elements["service-ips"] == [])
    }

    @Test("the masquerade decision is the family's, a rule at the top of the shape chain, no element")
    func masqueradeIsTheFamilysRule() async throws {
        let web = Plans.clusterIP(endpoints: Plans.endpoints(1))
        let backend = self.backend()
        try await backend.sync(from: nil, to: Plans.table(web))
        let contents = try #require(try kernel.list(table))
        #expect(contents.sets.map(\.name).filter { $0.hasPrefix("masquerade") } == [])
        #expect(contents.elements["service-ips"]?.count == 1 && contents.elements["cluster-endpoints"]?.count == 1)
        let rules = contents.rules(in: "pool-size-1")
        #expect(rules.count == 1 + 3, "\(rules)")
        #expect(rules[0].expressions == .match(.ipSaddr, inPrefix: .ipv4("10.244.0.0"), length: 16, negated: true)
                + .jump("mark-for-masquerade"))

        // With --masquerade-all every source is marked.
        let allKernel = FakeNFTKernel()
        let everySource = ProxyOptions(clusterCIDRs: [Plans.podCIDR], masqueradeAll: true)
        var all = web
        all.clusterIPMasquerade = .all
        try await NFTablesBackend(family: .ipv4, options: everySource, kernel: allKernel)
            .sync(from: nil, to: Plans.table(all))
        let allRules = try #require(try allKernel.list(table)).rules(in: "pool-size-1")
        #expect(allRules.first?.expressions == [.verdict(.jump("mark-for-masquerade"))], "\(allRules)")
    }

    @Test("without a pod network the shape chain marks nothing")
    func noPodNetwork() async throws {
        let backend = self.backend(ProxyOptions())
        var plan = Plans.clusterIP(endpoints: Plans.endpoints(2))
        plan.clusterIPMasquerade = .none
        try await backend.sync(from: nil, to: Plans.table(plan))
        let rules = try #require(try kernel.list(table)).rules(in: "pool-size-2")
        #expect(rules.count == 3, "\(rules)")
        #expect(!rules.contains { $0.expressions.contains(.verdict(.jump("mark-for-masquerade"))) })
    }

    @Test("affinity, an external stage or a masquerade other than the pod network's keep a chain of their own")
    func portsThatKeepTheirChains() async throws {
        let backend = self.backend()
        let sticky = Plans.clusterIP(Plans.sticky, ip: "10.96.0.12", port: 82, endpoints: Plans.endpoints(2),
                                     affinity: 60)
        var nodePort = Plans.clusterIP(endpoints: Plans.endpoints(2))
        nodePort.nodePort = 30080
        nodePort.externalTraffic = .forward(.cluster)
        nodePort.externalStage = ExternalStage(masqueradeAll: true)
        var elsewhere = Plans.clusterIP(Plans.dns, ip: "10.96.0.53", port: 53, endpoints: Plans.endpoints(2))
        elsewhere.clusterIPMasquerade = .all
        try await backend.sync(from: nil, to: Plans.table(sticky, nodePort, elsewhere))
        let contents = try #require(try kernel.list(table))
        for name in [Plans.sticky, Plans.web, Plans.dns] {
            #expect(contents.chain(NFTablesChainName.cluster(name)) != nil, "\(name)")
        }
        #expect(contents.chain("pool-size-2") == nil)
        #expect(contents.elements["cluster-endpoints"] == [])
        #expect(NFTablesTranslationTests.all(contents, "endpoints").count == 6)
        #expect(contents.elements["service-ips"]?.allSatisfy {
            if case .verdict(.goto(let chain)) = $0.value { !chain.hasPrefix("pool-size-") } else { false }
        } == true)

        // Affinity dropped: the port moves to the shared shape, its chain goes.
        var plain = sticky
        plain.affinityTimeout = nil
        try await backend.sync(from: Plans.table(sticky, nodePort, elsewhere), to: Plans.table(plain, nodePort, elsewhere))
        let after = try #require(try kernel.list(table))
        #expect(after.chain(NFTablesChainName.cluster(Plans.sticky)) == nil)
        #expect(after.chain("pool-size-2") != nil)
        #expect(after.elements["cluster-endpoints"]?.count == 2)
        try await backend.sync(from: nil, to: Plans.table(plain, nodePort, elsewhere))
        #expect(await backend.lastTransaction.isEmpty)
    }
}

import StraitModel
import StraitNFT
import StraitProxy
import Testing
@testable import StraitProxyNFTables

/// The nftables mode against the in-memory kernel: what a sync writes, and that each partial sync
/// holds only the difference. The fake refuses what the kernel refuses (a chain deleted while an
/// element still points at it, an element added twice with another value), so order is tested too.
@Suite("nftables mode translation")
struct NFTablesTranslationTests {
    let kernel = FakeNFTKernel()
    var backend: NFTablesBackend { NFTablesBackend(family: .ipv4, options: Plans.options, kernel: kernel) }
    let table = Plans.layout.table

    @Test("a full sync writes the fixed chains, the dispatch element, the service chain and its endpoints as data")
    func fullSync() async throws {
        let backend = self.backend
        try await backend.sync(from: nil, to: Plans.table(Plans.clusterIP(endpoints: Plans.endpoints(3))))
        let contents = try #require(try kernel.list(table))
        let chain = NFTablesChainName.cluster(Plans.web)
        #expect(chain.hasPrefix("service-") && chain.hasSuffix("-default/web/tcp/http"), "\(chain)")
        #expect(contents.chain(chain) != nil)
        #expect(contents.elements["service-ips"] == [
            Element(["10.96.0.10", .proto(.tcp), .port(80)], .verdict(.goto(chain)))])
        let endpoints = Self.all(contents, "endpoints")
        #expect(Set(endpoints.compactMap(\.value)) == Set(["10.244.1.2", "10.244.2.2", "10.244.3.2"].map {
            ElementValue.data([.ipv4($0), .port(8080)]) }))
        // One pool: its keys are its number in the high half, slots 0 to 2 in the low one.
        let keys = endpoints.compactMap { if case .integer(let key) = $0.key.first { key } else { nil } }.sorted()
        let base = try #require(keys.first)
        #expect(keys == [base, base + 1, base + 2] && base & 0xffff == 0, "\(keys)")
        #expect(contents.elements["hairpin-endpoints"]?.count == 3)
        let rules = contents.rules(in: chain)
        #expect(rules.count == 2, "masquerade for sources outside the pod network, then the DNAT")
        #expect(rules.last?.expressions.contains(.numgen(.random, modulus: 3, offset: base, dreg: .reg1)) == true)
        #expect(rules.last?.expressions.contains {
            if case .lookup(let set, .reg1, .reg1?, _) = $0 { set.hasPrefix("endpoints-") } else { false }
        } == true)
        #expect(rules.last?.expressions.last == .nat(.dnat, family: .ip, addressMin: .reg1, portMin: .reg32(1)))
        let bases = ["nat-prerouting", "nat-output", "nat-postrouting",
                     "filter-input", "filter-forward", "filter-output"]
        for base in bases {
            #expect(contents.chain(base)?.base != nil, "\(base)")
        }
        #expect(contents.chain("nat-prerouting")?.base?.priority == Priority.dstnat)
        #expect(contents.chain("filter-input")?.base?.priority == Priority.dstnat - 10)
    }

    @Test("an endpoint replaced is a data-only commit: one element out and one in, per data map")
    func endpointChangeIsDataOnly() async throws {
        let backend = self.backend
        let first = Plans.table(Plans.clusterIP(endpoints: Plans.endpoints(3)))
        try await backend.sync(from: nil, to: first)
        var replaced = Plans.endpoints(3)
        replaced[1] = ProxyEndpoint(address: IPAddress("10.244.9.2")!, port: 8080)
        let second = Plans.table(Plans.clusterIP(endpoints: replaced))
        try await backend.sync(from: first, to: second)
        let tx = await backend.lastTransaction
        #expect(tx.onlyElements, "\(tx.changes)")
        let sets = tx.elementSets.map { $0.hasPrefix("endpoints-") ? "endpoints" : $0 }.sorted()
        #expect(sets == ["endpoints", "hairpin-endpoints"], "\(tx.changes)")
        let contents = try #require(try kernel.list(table))
        let endpoints = Self.all(contents, "endpoints")
        #expect(Set(endpoints.compactMap(\.value)) == Set(["10.244.1.2", "10.244.9.2", "10.244.3.2"].map {
            ElementValue.data([.ipv4($0), .port(8080)]) }))
        // The endpoints that stayed kept their slots (the low half of the key).
        let slotOf = Dictionary(uniqueKeysWithValues: endpoints.map { element in
            (element.value!, element.key.first.flatMap { if case .integer(let key) = $0 { key & 0xffff } else { nil } })
        })
        #expect(slotOf[.data([.ipv4("10.244.1.2"), .port(8080)])] == 0)
        #expect(slotOf[.data([.ipv4("10.244.3.2"), .port(8080)])] == 2)
        #expect(slotOf[.data([.ipv4("10.244.9.2"), .port(8080)])] == 1)
    }

    @Test("a new Service adds its chain, rules and elements; a removed one loses its elements before its chain")
    func serviceAddedAndRemoved() async throws {
        let backend = self.backend
        let web = Plans.clusterIP(endpoints: Plans.endpoints(2))
        let dns = Plans.clusterIP(Plans.dns, ip: "10.96.0.53", port: 53, endpoints: Plans.endpoints(2, from: 5))
        let one = Plans.table(web), two = Plans.table(web, dns)
        try await backend.sync(from: nil, to: one)
        try await backend.sync(from: one, to: two)
        let added = await backend.lastTransaction
        #expect(added.changes.contains(.add(.chain(Chain(table: table, name: NFTablesChainName.cluster(Plans.dns))))))
        #expect(try kernel.list(table)?.elements["service-ips"]?.count == 2)

        try await backend.sync(from: two, to: one)
        let removed = await backend.lastTransaction
        let deleteChain = try #require(removed.changes.firstIndex(of: .delete(.chain(
            Chain(table: table, name: NFTablesChainName.cluster(Plans.dns))))))
        let lastElementDelete = try #require(removed.changes.lastIndex {
            if case .delete(.elements) = $0 { true } else { false }
        })
        #expect(lastElementDelete < deleteChain)
        let contents = try #require(try kernel.list(table))
        #expect(contents.chain(NFTablesChainName.cluster(Plans.dns)) == nil)
        #expect(contents.elements["service-ips"]?.count == 1)
        #expect(Self.all(contents, "endpoints").count == 2)
    }

    @Test("no endpoints rejects through the no-endpoint map; Local policy without local endpoints drops")
    func rejectAndDrop() async throws {
        let backend = self.backend
        let none = Plans.clusterIP(endpoints: [])
        var local = Plans.clusterIP(Plans.dns, ip: "10.96.0.53", port: 53, endpoints: [])
        local.clusterIPTraffic = .drop
        try await backend.sync(from: nil, to: Plans.table(none, local))
        let contents = try #require(try kernel.list(table))
        #expect(Set(contents.elements["no-endpoint-services"] ?? []) == [
            Element(["10.96.0.10", .proto(.tcp), .port(80)], .verdict(.goto("reject-chain"))),
            Element(["10.96.0.53", .proto(.udp), .port(53)], .verdict(.drop)),
        ])
        #expect(contents.elements["service-ips"] == [])
        #expect(contents.chains.allSatisfy { !$0.name.hasPrefix("service-") || $0.name == "service-endpoints-check" })

        // Endpoints arrive: the reject element goes, the dispatch element comes.
        let old = Plans.table(none, local)
        try await backend.sync(from: old, to: Plans.table(Plans.clusterIP(endpoints: Plans.endpoints(1)), local))
        let after = try #require(try kernel.list(table))
        #expect(after.elements["no-endpoint-services"]?.count == 1)
        #expect(after.elements["service-ips"]?.count == 1)
    }

    @Test("NodePort, external and load-balancer IPs go through the external stage; the firewall guards LB IPs")
    func externalStageAndFirewall() async throws {
        let backend = self.backend
        var plan = Plans.clusterIP(endpoints: Plans.endpoints(2))
        plan.nodePort = 30080
        plan.externalIPs = [IPAddress("203.0.113.10")!]
        plan.loadBalancerIPs = [IPAddress("203.0.113.20")!]
        plan.externalTraffic = .forward(.cluster)
        plan.externalStage = ExternalStage(masqueradeAll: true)
        plan.firewall = LoadBalancerFirewall(allowedSources: [IPCIDR("192.168.100.2/32")!])
        try await backend.sync(from: nil, to: Plans.table(plan))
        let contents = try #require(try kernel.list(table))
        let external = NFTablesChainName.external(Plans.web), firewall = NFTablesChainName.firewall(Plans.web)
        #expect(Set(contents.elements["service-ips"] ?? []).isSuperset(of: [
            Element(["203.0.113.10", .proto(.tcp), .port(80)], .verdict(.goto(external))),
            Element(["203.0.113.20", .proto(.tcp), .port(80)], .verdict(.goto(firewall))),
        ]))
        #expect(contents.elements["service-nodeports"]
                == [Element([.proto(.tcp), .port(30080)], .verdict(.goto(external)))])
        #expect(contents.rules(in: external).first?.expressions == [.verdict(.jump("mark-for-masquerade"))])
        #expect(contents.rules(in: external).last?.expressions
                == [.verdict(.goto(NFTablesChainName.cluster(Plans.web)))])
        #expect(contents.rules(in: firewall).count == 2)
        #expect(contents.rules(in: firewall).last?.expressions == [.verdict(.drop)])
    }

    @Test("ClientIP affinity: a rule per remembered slot, then a uniform cascade that remembers the slot it draws")
    func affinity() async throws {
        let backend = self.backend
        let sticky = Plans.clusterIP(endpoints: Plans.endpoints(3), affinity: 10800)
        try await backend.sync(from: nil, to: Plans.table(sticky))
        let contents = try #require(try kernel.list(table))
        let rules = contents.rules(in: NFTablesChainName.cluster(Plans.web))
        #expect(rules.count == 1 + 3 + 3, "masquerade, 3 remembered slots, 3 draws")
        let keys = Self.all(contents, "endpoints").compactMap {
            if case .integer(let key) = $0.key.first { key } else { nil }
        }
        let base = try #require(keys.min())
        func dynset(_ operation: DynsetOperation) -> Expression {
            .dynset(set: "affinity", operation: operation, sregKey: .reg1, timeout: .seconds(10800))
        }
        for slot in UInt32(0)..<3 {
            let remembered = rules[1 + Int(slot)].expressions, drawn = rules[4 + Int(slot)].expressions
            let key: Expression = .numgen(.random, modulus: 1, offset: base + slot, dreg: .reg32(1))
            #expect(remembered.contains(.lookup(set: "affinity", sreg: .reg1)) && remembered.contains(key))
            #expect(remembered.contains(dynset(.update)) && drawn.contains(dynset(.add)) && drawn.contains(key))
            // Slot i is drawn with probability 1/(N - i) among what is left: uniform; the last always.
            #expect(drawn.contains(.numgen(.random, modulus: 3 - slot, dreg: .reg1)) == (slot < 2))
        }
    }

    @Test("a full sync repairs a deleted element and a deleted chain, and then has nothing left to do")
    func fullSyncRepairs() async throws {
        let backend = self.backend
        let dns = Plans.clusterIP(Plans.dns, ip: "10.96.0.53", port: 53, endpoints: Plans.endpoints(1, from: 7))
        let services = Plans.table(Plans.clusterIP(endpoints: Plans.endpoints(2)), dns)
        try await backend.sync(from: nil, to: services)
        let before = try #require(try kernel.list(table))
        // By hand: the dns dispatch element, then the dns chain with its endpoint elements.
        var vandal = Transaction()
        let dnsChain = Chain(table: table, name: NFTablesChainName.cluster(Plans.dns))
        let dnsElement = try #require(before.elements["service-ips"]?.first { $0.key[0] == "10.96.0.53" })
        vandal.delete([dnsElement], from: Plans.layout.serviceIPs)
        vandal.delete(dnsChain)
        vandal.add(Chain(table: table, name: "stray"))
        try kernel.commit(vandal)

        try await backend.sync(from: nil, to: services)
        let repaired = try #require(try kernel.list(table))
        #expect(Set(repaired.chains) == Set(before.chains))
        #expect(repaired.elements.mapValues(Set.init) == before.elements.mapValues(Set.init))
        #expect(repaired.rules(in: dnsChain.name) == before.rules(in: dnsChain.name))

        try await backend.sync(from: nil, to: services)
        #expect(await backend.lastTransaction.isEmpty)
    }

    @Test("a Service claiming another's address and port does not break the sync; the first by name shows")
    func conflictingAddresses() async throws {
        let backend = self.backend
        let a = Plans.clusterIP(endpoints: Plans.endpoints(1))
        let b = Plans.clusterIP(ServicePortName(namespace: "other", name: "web", port: "http", protocol: .tcp),
                                endpoints: Plans.endpoints(1, from: 4))
        let one = Plans.table(a), both = Plans.table(a, b)
        try await backend.sync(from: nil, to: one)
        try await backend.sync(from: one, to: both)
        try await backend.sync(from: both, to: Plans.table(b))
        let contents = try #require(try kernel.list(table))
        #expect(contents.elements["service-ips"] == [
            Element(["10.96.0.10", .proto(.tcp), .port(80)], .verdict(.goto(NFTablesChainName.cluster(b.name))))])
    }

    @Test("a shared endpoint keeps its hairpin element until neither Service has it; a full sync then agrees")
    func sharedEndpointHairpin() async throws {
        let backend = self.backend
        let shared = Plans.endpoints(1, from: 3)
        let a = Plans.clusterIP(endpoints: Plans.endpoints(2) + shared)
        let b = Plans.clusterIP(Plans.dns, ip: "10.96.0.53", port: 53, endpoints: shared)
        func hairpin() throws -> Set<Element> { Set(try kernel.list(table)?.elements["hairpin-endpoints"] ?? []) }
        let element = Plans.layout.hairpinElement(shared[0].address)
        let both = Plans.table(a, b), onlyB = Plans.table(b)
        try await backend.sync(from: nil, to: both)
        #expect(try hairpin().count == 3 && hairpin().contains(element))
        try await backend.sync(from: both, to: onlyB)
        #expect(try hairpin() == [element])
        let aWithout = Plans.clusterIP(endpoints: Plans.endpoints(2))
        let next = Plans.table(aWithout)
        try await backend.sync(from: onlyB, to: next)
        #expect(try hairpin().count == 2 && !hairpin().contains(element))

        // What the partial syncs left is what a full sync wants: it finds nothing to do.
        try await backend.sync(from: nil, to: next)
        let repair = await backend.lastTransaction
        #expect(repair.isEmpty, "\(repair.changes)")
    }

    @Test("cleanup removes the table; a sync that the kernel refuses leaves the last state for a full sync")
    func cleanup() async throws {
        let backend = self.backend
        try await backend.sync(from: nil, to: Plans.table(Plans.clusterIP(endpoints: Plans.endpoints(1))))
        try await backend.cleanup()
        #expect(try kernel.list(table) == nil)
        try await backend.cleanup()
    }

    /// The elements of every shard of a sharded map.
    static func all(_ contents: TableContents, _ prefix: String) -> [Element] {
        contents.elements.filter { $0.key.hasPrefix(prefix + "-") }.flatMap(\.value)
    }

    @Test("slots: survivors keep theirs, newcomers fill holes, a shrink moves the last into the hole")
    func reslot() {
        let e = Plans.endpoints(5)
        #expect(EndpointSlots.reslot([e[0], e[1], e[2]], [e[0], e[3], e[2]]) == [e[0], e[3], e[2]])
        #expect(EndpointSlots.reslot([e[0], e[1], e[2]], [e[0], e[2]]) == [e[0], e[2]])
        #expect(EndpointSlots.reslot([e[0], e[1]], [e[4], e[1], e[0]]) == [e[0], e[1], e[4]])
        #expect(EndpointSlots.reslot([], [e[1], e[0]]) == [e[1], e[0]])
    }
}

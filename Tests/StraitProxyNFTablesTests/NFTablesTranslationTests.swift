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

    @Test("a full sync writes the fixed chains, the dispatch element to the shape chain, the endpoints as data")
    func fullSync() async throws {
        let backend = self.backend
        try await backend.sync(from: nil, to: Plans.table(Plans.clusterIP(endpoints: Plans.endpoints(3))))
        let contents = try #require(try kernel.list(table))
        // A plain port owns no chain: it goes to the chain every port of 3 endpoints shares.
        #expect(contents.chain(NFTablesChainName.cluster(Plans.web)) == nil)
        #expect(contents.elements["service-ips"] == [
            Element(["10.96.0.10", .proto(.tcp), .port(80)], .verdict(.goto("pool-size-3")))])
        let endpoints = contents.elements["cluster-endpoints"] ?? []
        #expect(Set(endpoints) == Set(["10.244.1.2", "10.244.2.2", "10.244.3.2"].enumerated().map {
            Element(["10.96.0.10", .proto(.tcp), .port(80), .integer(UInt32($0.offset))],
                    .data([.ipv4($0.element), .port(8080)])) }))
        #expect(Self.all(contents, "endpoints").isEmpty)
        #expect(contents.elements["hairpin-endpoints"]?.count == 3)
        let rules = contents.rules(in: "pool-size-3")
        #expect(rules.count == 1 + 3, "masquerade from outside the pod network, a DNAT per protocol")
        #expect(rules[0].expressions.last == .verdict(.jump("mark-for-masquerade")))
        let dnat = rules[1].expressions
        #expect(dnat.prefix(2) == [.meta(.l4proto, dreg: .reg1), .cmp(.eq, sreg: .reg1, data: [6])])
        #expect(dnat.contains(.numgen(.random, modulus: 3, dreg: .reg32(3))))
        #expect(dnat.contains(.lookup(set: "cluster-endpoints", sreg: .reg1, dreg: .reg1)))
        #expect(dnat.last == .nat(.dnat, family: .ip, addressMin: .reg1, portMin: .reg32(1)))
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
        #expect(tx.elementSets == ["cluster-endpoints", "hairpin-endpoints"], "\(tx.changes)")
        let contents = try #require(try kernel.list(table))
        // The endpoints that stayed kept their slots (the last field of the key).
        let slotOf = Dictionary(uniqueKeysWithValues: (contents.elements["cluster-endpoints"] ?? []).map { element in
            (element.value!, element.key.last)
        })
        #expect(slotOf == [.data([.ipv4("10.244.1.2"), .port(8080)]): .integer(0),
                           .data([.ipv4("10.244.9.2"), .port(8080)]): .integer(1),
                           .data([.ipv4("10.244.3.2"), .port(8080)]): .integer(2)])
    }

    @Test("a new Service of an existing pool size is data only; a removed one leaves the shape chain to the others")
    func serviceAddedAndRemoved() async throws {
        let backend = self.backend
        let web = Plans.clusterIP(endpoints: Plans.endpoints(2))
        let dns = Plans.clusterIP(Plans.dns, ip: "10.96.0.53", port: 53, endpoints: Plans.endpoints(2, from: 5))
        let one = Plans.table(web), two = Plans.table(web, dns)
        try await backend.sync(from: nil, to: one)
        try await backend.sync(from: one, to: two)
        let added = await backend.lastTransaction
        #expect(added.onlyElements, "\(added.changes)")
        #expect(try kernel.list(table)?.elements["service-ips"]?.count == 2)
        #expect(try kernel.list(table)?.elements["cluster-endpoints"]?.count == 4)

        try await backend.sync(from: two, to: one)
        let removed = await backend.lastTransaction
        #expect(removed.onlyElements, "\(removed.changes)")
        let contents = try #require(try kernel.list(table))
        #expect(contents.chain("pool-size-2") != nil)
        #expect(contents.elements["service-ips"]?.count == 1)
        #expect(contents.elements["cluster-endpoints"]?.count == 2)
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
            if case .integer(let key) = $0.key.first?.value { key } else { nil }
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
        let sticky = Plans.clusterIP(Plans.sticky, ip: "10.96.0.12", port: 82, endpoints: Plans.endpoints(2),
                                     affinity: 600)
        let services = Plans.table(Plans.clusterIP(endpoints: Plans.endpoints(2)), dns, sticky)
        try await backend.sync(from: nil, to: services)
        let before = try #require(try kernel.list(table))
        // By hand: the dns dispatch element, then its shape chain (it alone has one endpoint), one of web's
        // endpoint elements, and the sticky port's own chain (after its dispatch element).
        var vandal = Transaction()
        let dnsElement = try #require(before.elements["service-ips"]?.first { $0.key[0] == "10.96.0.53" })
        let stickyElement = try #require(before.elements["service-ips"]?.first { $0.key[0] == "10.96.0.12" })
        let webEndpoint = try #require(before.elements["cluster-endpoints"]?.first { $0.key[0] == "10.96.0.10" })
        vandal.delete([dnsElement, stickyElement], from: Plans.layout.serviceIPs)
        vandal.delete([webEndpoint], from: Plans.layout.clusterEndpoints)
        vandal.delete(Chain(table: table, name: "pool-size-1"))
        vandal.delete(Chain(table: table, name: NFTablesChainName.cluster(Plans.sticky)))
        vandal.add(Chain(table: table, name: "stray"))
        try kernel.commit(vandal)

        try await backend.sync(from: nil, to: services)
        let repaired = try #require(try kernel.list(table))
        #expect(Set(repaired.chains) == Set(before.chains))
        #expect(repaired.elements.mapValues(Set.init) == before.elements.mapValues(Set.init))
        #expect(repaired.rules(in: "pool-size-1") == before.rules(in: "pool-size-1"))
        #expect(repaired.rules(in: NFTablesChainName.cluster(Plans.sticky))
                == before.rules(in: NFTablesChainName.cluster(Plans.sticky)))

        try await backend.sync(from: nil, to: services)
        #expect(await backend.lastTransaction.isEmpty)
    }

    @Test("a Service claiming another's address and port does not break the sync; the first by name shows")
    func conflictingAddresses() async throws {
        let backend = self.backend
        let a = Plans.clusterIP(endpoints: Plans.endpoints(1))
        let b = Plans.clusterIP(ServicePortName(namespace: "other", name: "web", port: "http", protocol: .tcp),
                                endpoints: Plans.endpoints(2, from: 4))
        let one = Plans.table(a), both = Plans.table(a, b)
        try await backend.sync(from: nil, to: one)
        try await backend.sync(from: one, to: both)
        let shown = try #require(try kernel.list(table))
        #expect(shown.elements["service-ips"] == [
            Element(["10.96.0.10", .proto(.tcp), .port(80)], .verdict(.goto("pool-size-1")))])
        // The slots are those of the port shown: a's one, none of b's two.
        #expect(shown.elements["cluster-endpoints"] == [
            Element(["10.96.0.10", .proto(.tcp), .port(80), .integer(0)], .data([.ipv4("10.244.1.2"), .port(8080)]))])
        try await backend.sync(from: both, to: Plans.table(b))
        let contents = try #require(try kernel.list(table))
        #expect(contents.elements["service-ips"] == [
            Element(["10.96.0.10", .proto(.tcp), .port(80)], .verdict(.goto("pool-size-2")))])
        #expect(Set(contents.elements["cluster-endpoints"]?.compactMap(\.value) ?? []) == [
            .data([.ipv4("10.244.4.2"), .port(8080)]), .data([.ipv4("10.244.5.2"), .port(8080)])])
        #expect(contents.chain("pool-size-1") == nil)
        try await backend.sync(from: nil, to: Plans.table(b))
        #expect(await backend.lastTransaction.isEmpty)
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

    @Test("only endpoints that may be on this node get a hairpin element: local ones and those of no named node")
    func hairpinElementsFollowTheNode() async throws {
        let backend = self.backend
        let local = ProxyEndpoint(address: IPAddress("10.244.1.2")!, port: 8080, isLocal: true, nodeName: "node")
        let unnamed = ProxyEndpoint(address: IPAddress("10.244.2.2")!, port: 8080)
        let remote = ProxyEndpoint(address: IPAddress("10.244.3.2")!, port: 8080, nodeName: "other")
        let elsewhere = ProxyEndpoint(address: IPAddress("10.244.4.2")!, port: 8080, nodeName: "other")
        var sticky = Plans.clusterIP(Plans.sticky, ip: "10.96.0.12", port: 82, endpoints: [elsewhere, local],
                                     affinity: 60)
        sticky.clusterIPMasquerade = .outside(Plans.podCIDR)
        let table = Plans.table(Plans.clusterIP(endpoints: [local, unnamed, remote]), sticky)
        try await backend.sync(from: nil, to: table)
        let contents = try #require(try kernel.list(self.table))
        #expect(Set(contents.elements["hairpin-endpoints"] ?? [])
                == [Plans.layout.hairpinElement(local.address), Plans.layout.hairpinElement(unnamed.address)])
        // Every endpoint still gets its slot, wherever it runs.
        #expect(contents.elements["cluster-endpoints"]?.count == 3)
        #expect(Self.all(contents, "endpoints").count == 2)

        // The remote endpoint moving to this node is one hairpin element in.
        let moved = ProxyEndpoint(address: remote.address, port: 8080, isLocal: true, nodeName: "node")
        let next = Plans.table(Plans.clusterIP(endpoints: [local, unnamed, moved]), sticky)
        try await backend.sync(from: table, to: next)
        let tx = await backend.lastTransaction
        #expect(tx.changes == [.add(.elements(SetReference(Plans.layout.hairpin),
                                              [Plans.layout.hairpinElement(remote.address)]))], "\(tx.changes)")
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

    @Test("slots of a small pool, found by linear search, are those the dictionary finds, repeats included")
    func reslotSmallAgrees() {
        let e = Plans.endpoints(12)
        struct Seeded: RandomNumberGenerator {
            var state: UInt64 = 0x5eed
            mutating func next() -> UInt64 {
                state = state &* 6364136223846793005 &+ 1442695040888963407
                return state
            }
        }
        var random = Seeded()
        func next(_ bound: Int) -> Int { Int.random(in: 0..<bound, using: &random) }
        for _ in 0..<2000 {
            // Old slots are distinct (reslot's own output); the new list may repeat an endpoint.
            let old = Array(e.shuffled(using: &random).prefix(next(13)))
            let new = (0..<next(17)).map { _ in e[next(12)] }
            #expect(EndpointSlots.reslotSmall(old, new) == EndpointSlots.reslotLarge(old, new), "\(old) -> \(new)")
        }
    }
}

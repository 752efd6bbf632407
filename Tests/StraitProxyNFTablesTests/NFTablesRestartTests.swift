import StraitModel
import StraitNFT
import StraitProxy
import StraitTestSupport
import Testing
@testable import StraitProxyNFTables

/// A restarted proxy's first full sync takes the pools the table holds: a port with ClientIP affinity keeps
/// its pool number and its endpoints' slots, which `@affinity` entries name, though a fresh process would
/// number and order them otherwise. Run against the fake kernel and a real one in a test namespace.
@Suite("nftables mode restart", .serialized)
struct NFTablesRestartTests {
    let layout = Plans.layout

    @Test("a restarted backend keeps a sticky port's pool number and slots, and rewrites nothing")
    func fakeKernelRestart() async throws {
        try await restartKeepsPools(FakeNFTKernel())
    }

    @Test("the same through a real kernel's table (netlink dump read back)")
    func realKernelRestart() async throws {
        try await withTestNamespaces(1) { namespaces in
            try await restartKeepsPools(try NFTConnection(namespace: namespaces[0].name))
        }
    }

    @Test("a slot deleted by hand is refilled at the restart and the other slots stay")
    func missingSlotIsRefilled() async throws {
        let kernel = FakeNFTKernel()
        let sticky = Plans.clusterIP(Plans.sticky, endpoints: Plans.endpoints(3), affinity: 60)
        let first = NFTablesBackend(family: .ipv4, options: Plans.options, kernel: kernel)
        try await first.sync(from: nil, to: Plans.table(sticky))
        let before = try #require(try kernel.list(layout.table))
        let (map, element) = try #require(endpointElement(in: before, slot: 1))
        var tx = Transaction()
        tx.delete([element], from: try #require(before.set(map)))
        try kernel.commit(tx)

        let restarted = NFTablesBackend(family: .ipv4, options: Plans.options, kernel: kernel)
        try await restarted.sync(from: nil, to: Plans.table(sticky))
        #expect(try unordered(kernel.list(layout.table)) == unordered(before))
        #expect(await restarted.lastTransaction.changes.count == 1, "only the lost element comes back")
    }

    /// Backend one numbers a plain port and the sticky port whose numbers collide (the sticky one takes the
    /// next number), then the plain port goes and the sticky port's endpoints change (slots [e4, e2, e3]).
    /// A second backend over the same table, given only the sticky port, must show the same table.
    private func restartKeepsPools(_ kernel: some NFTKernel) async throws {
        let stickyPlan = { (endpoints: [ProxyEndpoint]) in
            Plans.clusterIP(Plans.sticky, endpoints: endpoints, affinity: 60)
        }
        let plain = Plans.clusterIP(try collidingName(with: stickyPlan(Plans.endpoints(1))), ip: "10.96.0.20",
                                    endpoints: Plans.endpoints(2, from: 20))
        let first = NFTablesBackend(family: .ipv4, options: Plans.options, kernel: kernel)
        let one = Plans.table(plain)
        let two = one.replacing([Plans.entry(stickyPlan(Plans.endpoints(3)))])
        let three = Plans.table(stickyPlan(Plans.endpoints(3, from: 2)))
        try await first.sync(from: nil, to: one)
        try await first.sync(from: one, to: two)
        try await first.sync(from: two, to: three)
        let before = try #require(try kernel.list(layout.table))
        let hashed = try freshPoolNumber(stickyPlan(Plans.endpoints(1)))
        let rules = before.rules(in: NFTablesChainName.pool(.cluster, Plans.sticky))
        #expect(KernelPools.poolNumber(in: rules, layout: layout) == (hashed + 1) & 0xffff,
                "the sticky port took the number after its hash's")
        #expect(endpointElement(in: before, slot: 0)?.element.value == .data([Datum(Plans.endpoints(1, from: 4)[0].address),
                                                                             .port(8080)]))

        let restarted = NFTablesBackend(family: .ipv4, options: Plans.options, kernel: kernel)
        try await restarted.sync(from: nil, to: three)
        #expect(await restarted.lastTransaction.isEmpty, "the restart's full sync rewrites nothing")
        #expect(try unordered(kernel.list(layout.table)) == unordered(before))
        // And the restarted backend goes on from those pools: one more endpoint takes the free slot 3.
        let four = three.replacing([Plans.entry(stickyPlan(Plans.endpoints(4, from: 2)))])
        try await restarted.sync(from: three, to: four)
        let after = try #require(try kernel.list(layout.table))
        #expect(endpointElement(in: after, slot: 3)?.element.value == .data([Datum(Plans.endpoints(1, from: 5)[0].address),
                                                                            .port(8080)]))
        #expect(endpointElement(in: after, slot: 0)?.element == endpointElement(in: before, slot: 0)?.element)
    }

    /// The pool number a fresh process gives `plan`'s cluster pool: its hash's.
    private func freshPoolNumber(_ plan: ServicePortPlan) throws -> UInt32 {
        var slots = EndpointSlots()
        return try #require(try slots.assign(plan)[.cluster]).id
    }

    /// A plain port's name whose cluster pool hashes to the same number as `plan`'s.
    private func collidingName(with plan: ServicePortPlan) throws -> ServicePortName {
        let wanted = try freshPoolNumber(plan)
        for index in 0..<(1 << 22) {
            let name = ServicePortName(namespace: "default", name: "plain-\(index)", port: "http", protocol: .tcp)
            if try freshPoolNumber(Plans.clusterIP(name, endpoints: Plans.endpoints(1))) == wanted { return name }
        }
        throw CollisionNotFound()
    }

    /// The sticky port's endpoint element of `slot`, and the map holding it.
    private func endpointElement(in contents: TableContents, slot: UInt32) -> (map: String, element: Element)? {
        let rules = contents.rules(in: NFTablesChainName.pool(.cluster, Plans.sticky))
        guard let number = KernelPools.poolNumber(in: rules, layout: layout) else { return nil }
        let map = layout.endpoints(shard: NFTablesLayout.shard(number)).name
        let key = Datum.integer(NFTablesLayout.endpointKey(pool: number, slot: Int(slot)))
        return (contents.elements[map] ?? []).first { $0.key == [key] }.map { (map, $0) }
    }

    /// `contents` with each set's elements unordered: a set lists its elements in its hash order, which an
    /// element deleted and added again may change.
    private func unordered(_ contents: TableContents?) -> UnorderedContents? {
        contents.map { UnorderedContents(chains: $0.chains, sets: $0.sets, rules: $0.rules,
                                         elements: $0.elements.mapValues(Set.init)) }
    }

    private struct UnorderedContents: Equatable {
        var chains: [Chain]
        var sets: [NFTSet]
        var rules: [String: [ListedRule]]
        var elements: [String: Set<Element>]
    }

    private struct CollisionNotFound: Error {}
}

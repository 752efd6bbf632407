import Foundation
import StraitNFT
import Testing

@Suite("StraitNFT fake kernel")
struct FakeKernelTests {
    @Test("a committed table reads back as committed: chains, sets, elements, rules")
    func readBack() throws {
        let kernel = FakeNFTKernel()
        try kernel.commit(Fixture.transaction)
        let contents = try #require(try kernel.list(Fixture.table))
        #expect(contents.chains == Fixture.chains)
        #expect(Set(contents.sets) == [Fixture.serviceIPs, Fixture.clusterIPs])
        #expect(Set(contents.elements["service-ips"] ?? []) == Set(Fixture.serviceElements))
        for chain in Fixture.chains {
            #expect(contents.rules(in: chain.name) == Fixture.rules.filter { $0.chain == chain.name })
        }
        #expect(try kernel.tables(.ip) == [Fixture.table])
        #expect(try kernel.tables(.ip6) == [])
    }

    @Test("a batch with one bad change leaves everything as it was, and the error names the change")
    func allOrNothing() throws {
        let kernel = FakeNFTKernel()
        var tx = Fixture.transaction
        tx.add(Rule(in: Fixture.natOutput, .jump("no-such-chain")))
        let error = #expect(throws: NFTError.self) { try kernel.commit(tx) }
        #expect(error?.operation == "add rule to chain nat-output in table ip strait")
        #expect(error?.errno == ENOENT)
        #expect(try kernel.list(Fixture.table) == nil)

        try kernel.commit(Fixture.transaction)
        let before = try kernel.list(Fixture.table)
        var second = Transaction()
        second.add([Element(["10.96.0.99"])], to: Fixture.clusterIPs)
        second.delete(Chain(table: Fixture.table, name: "missing"))
        let deleteError = #expect(throws: NFTError.self) { try kernel.commit(second) }
        #expect(deleteError?.operation == "delete chain missing in table ip strait")
        #expect(deleteError?.errno == ENOENT)
        #expect(try kernel.list(Fixture.table) == before)
        #expect(kernel.committed.count == 1)
    }

    @Test("a chain or set still referenced cannot be deleted; after its references go, it can")
    func referencedObjects() throws {
        let kernel = FakeNFTKernel()
        try kernel.commit(Fixture.transaction)
        // svc-a is the target of a verdict element; svc-b of svc-a's numgen vmap.
        for chain in [Fixture.serviceA, Fixture.serviceB] {
            var tx = Transaction()
            tx.delete(chain)
            let error = #expect(throws: NFTError.self) { try kernel.commit(tx) }
            #expect(error?.errno == EBUSY, "\(chain)")
        }
        var set = Transaction()
        set.delete(Fixture.clusterIPs)
        #expect(throws: NFTError.self) { try kernel.commit(set) }

        var ordered = Transaction()
        ordered.delete([Fixture.serviceElements[0]], from: Fixture.serviceIPs)
        ordered.delete(Fixture.serviceA)
        ordered.flush(Fixture.natOutput)
        ordered.delete(Fixture.clusterIPs)
        try kernel.commit(ordered)
        let contents = try #require(try kernel.list(Fixture.table))
        #expect(contents.chain("svc-a") == nil)
        #expect(contents.set("cluster-ips") == nil)
        #expect(contents.elements["service-ips"] == [Fixture.serviceElements[1]])
    }

    @Test("create refuses what exists, add keeps it; an element cannot change its value by add")
    func createAddAndClash() throws {
        let kernel = FakeNFTKernel()
        var create = Transaction()
        create.create(Fixture.table)
        try kernel.commit(create)
        #expect(throws: NFTError.self) { try kernel.commit(create) }
        try kernel.commit(Fixture.transaction)
        try kernel.commit(Fixture.transaction)

        var clash = Transaction()
        clash.add([Element("10.96.0.10", .proto(.tcp), .port(80), verdict: .goto("svc-b"))], to: Fixture.serviceIPs)
        let error = #expect(throws: NFTError.self) { try kernel.commit(clash) }
        #expect(error?.errno == EEXIST)
        var swap = Transaction()
        swap.delete([Fixture.serviceElements[0]], from: Fixture.serviceIPs)
        swap.add([Element("10.96.0.10", .proto(.tcp), .port(80), verdict: .goto("svc-b"))], to: Fixture.serviceIPs)
        try kernel.commit(swap)
        let swapped = try kernel.list(Fixture.table)?.elements["service-ips"] ?? []
        #expect(swapped.contains { $0.value == .verdict(.goto("svc-b")) && $0.key[0] == "10.96.0.10" })

        var missing = Transaction()
        missing.delete([Element(["10.1.1.1"])], from: Fixture.clusterIPs)
        #expect(throws: NFTError.self) { try kernel.commit(missing) }
        var dangling = Transaction()
        dangling.add([Element("10.96.0.12", .proto(.tcp), .port(80), verdict: .goto("nowhere"))],
                     to: Fixture.serviceIPs)
        #expect(throws: NFTError.self) { try kernel.commit(dangling) }
    }

    @Test("flush chain, flush set, insert, replace and delete rules by handle, delete table")
    func flushAndRules() throws {
        let kernel = FakeNFTKernel()
        try kernel.commit(Fixture.transaction)
        var tx = Transaction()
        tx.flush(Fixture.filterInput)
        tx.flush(Fixture.serviceIPs)
        tx.insert(Rule(in: Fixture.services, .counter))
        try kernel.commit(tx)
        var contents = try #require(try kernel.list(Fixture.table))
        #expect(contents.rules(in: "filter-input").isEmpty)
        #expect(contents.elements["service-ips"] == [])
        #expect(contents.rules(in: "services").first == Rule(in: Fixture.services, .counter))

        let handle = try #require(contents.rules["services"]?.first?.handle)
        var replace = Transaction()
        replace.replace(handle: handle, with: Rule(in: Fixture.services, .accept))
        try kernel.commit(replace)
        contents = try #require(try kernel.list(Fixture.table))
        #expect(contents.rules(in: "services").first == Rule(in: Fixture.services, .accept))
        var delete = Transaction()
        delete.deleteRule(handle: handle, in: Fixture.services)
        try kernel.commit(delete)
        #expect(try kernel.list(Fixture.table)?.rules(in: "services").count == 1)
        #expect(throws: NFTError.self) { try kernel.commit(delete) }

        var drop = Transaction()
        drop.delete(Fixture.table)
        try kernel.commit(drop)
        #expect(try kernel.list(Fixture.table) == nil)
        #expect(throws: NFTError.self) { try kernel.commit(drop) }
    }
}

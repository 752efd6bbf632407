import Foundation
import StraitNFT
import StraitTestSupport
import Testing

@Suite("StraitNFT transactions")
struct TransactionTests {
    @Test("a batch with one bad rule changes nothing and the error names the rule's chain and table")
    func atomicity() async throws {
        try await withTestNamespaces(1) { namespaces in
            let namespace = namespaces[0]
            let connection = try NFTConnection(namespace: namespace.name)
            var tx = Fixture.transaction
            tx.add(Rule(in: Fixture.natOutput, .jump("no-such-chain")))
            let error = #expect(throws: NFTError.self) { try connection.commit(tx) }
            #expect(error?.operation == "add rule to chain nat-output in table ip strait", "\(String(describing: error))")
            #expect(error?.errno == ENOENT)
            #expect(error?.description.hasPrefix("add rule to chain nat-output in table ip strait: ") == true)
            #expect(try connection.list(Fixture.table) == nil)
            #expect(try namespace.run(["nft", "list", "ruleset"]).trimmingCharacters(in: .whitespacesAndNewlines) == "")

            // Against an existing table, the failed batch leaves the old contents intact.
            try connection.commit(Fixture.transaction)
            let before = try #require(try connection.list(Fixture.table))
            var second = Transaction()
            second.add(Rule(in: Fixture.services, .counter))
            second.add([Element(["10.96.0.99"])], to: Fixture.clusterIPs)
            second.delete(Chain(table: Fixture.table, name: "missing"))
            let deleteError = #expect(throws: NFTError.self) { try connection.commit(second) }
            #expect(deleteError?.operation == "delete chain missing in table ip strait")
            #expect(try connection.list(Fixture.table) == before)
        }
    }

    @Test("read-back equals what was committed: chains, sets, elements, rules")
    func readBack() async throws {
        try await withTestNamespaces(1) { namespaces in
            let connection = try NFTConnection(namespace: namespaces[0].name)
            try connection.commit(Fixture.transaction)
            let contents = try #require(try connection.list(Fixture.table))
            #expect(contents.table == Fixture.table)
            #expect(contents.chains.sorted { $0.name < $1.name } == Fixture.chains.sorted { $0.name < $1.name })
            #expect(Set(contents.sets) == [Fixture.serviceIPs, Fixture.clusterIPs])
            #expect(Set(contents.elements["service-ips"] ?? []) == Set(Fixture.serviceElements))
            #expect(Set(contents.elements["cluster-ips"] ?? []) == Set(Fixture.clusterElements))
            for chain in Fixture.chains {
                let read = contents.rules(in: chain.name), written = Fixture.rules.filter { $0.chain == chain.name }
                #expect(read == written, "\(read.map(\.expressions)) \(read.map(\.comment)) vs \(written.map(\.expressions))")
            }
            #expect(try connection.tables().contains(Fixture.table))
        }
    }

    @Test("flush chain, flush set, delete rule by handle, delete elements, delete set and table")
    func flushAndDelete() async throws {
        try await withTestNamespaces(1) { namespaces in
            let namespace = namespaces[0]
            let connection = try NFTConnection(namespace: namespace.name)
            try connection.commit(Fixture.transaction)

            var tx = Transaction()
            tx.flush(Fixture.filterInput)
            tx.flush(Fixture.serviceIPs)
            tx.delete([Element(["10.96.0.10"])], from: Fixture.clusterIPs)
            try connection.commit(tx)
            var contents = try #require(try connection.list(Fixture.table))
            #expect(contents.rules(in: "filter-input").isEmpty)
            #expect(contents.elements["service-ips"] == [])
            #expect(contents.elements["cluster-ips"] == [Element(["10.96.0.11"])])
            #expect(!(try namespace.listTable().contains("10.96.0.10 . tcp")))

            let handle = try #require(contents.rules["nat-postrouting"]?.first?.handle)
            var deleteRule = Transaction()
            deleteRule.deleteRule(handle: handle, in: Fixture.natPostrouting)
            deleteRule.insert(Rule(in: Fixture.services, .counter))
            try connection.commit(deleteRule)
            contents = try #require(try connection.list(Fixture.table))
            #expect(contents.rules(in: "nat-postrouting").isEmpty)
            #expect(contents.rules(in: "services").first == Rule(in: Fixture.services, .counter))

            var deleteSet = Transaction()
            deleteSet.delete(Fixture.clusterIPs)
            // The rule in nat-output refers to cluster-ips: flush it in the same batch first.
            deleteSet.flush(Fixture.natOutput)
            let error = #expect(throws: NFTError.self) { try connection.commit(deleteSet) }
            #expect(error?.operation == "delete set cluster-ips in table ip strait")
            var ordered = Transaction()
            ordered.flush(Fixture.natOutput)
            ordered.delete(Fixture.clusterIPs)
            try connection.commit(ordered)
            #expect(try connection.list(Fixture.table)?.set("cluster-ips") == nil)

            var dropTable = Transaction()
            dropTable.delete(Fixture.table)
            try connection.commit(dropTable)
            #expect(try connection.list(Fixture.table) == nil)
            #expect(try namespace.output(["nft", "list", "table", "ip", "strait"]).status != 0)
        }
    }

    @Test("create refuses an existing table; add leaves it")
    func createVersusAdd() async throws {
        try await withTestNamespaces(1) { namespaces in
            let connection = try NFTConnection(namespace: namespaces[0].name)
            var tx = Transaction()
            tx.create(Fixture.table)
            try connection.commit(tx)
            let error = #expect(throws: NFTError.self) { try connection.commit(tx) }
            #expect(error?.errno == EEXIST)
            #expect(error?.operation == "add table ip strait" || error?.operation == "create table ip strait")
            var add = Transaction()
            add.add(Fixture.table)
            try connection.commit(add)
        }
    }

    @Test("100,000 concatenated elements and a dynamic timeout set in one batch")
    func largeBatch() async throws {
        try await withTestNamespaces(1) { namespaces in
            let namespace = namespaces[0]
            let connection = try NFTConnection(namespace: namespace.name)
            let table = Table(.ip, "big")
            let set = NFTSet(table: table, name: "endpoints", keyType: [.ipv4Addr, .inetProto, .inetService])
            let affinity = NFTSet(table: table, name: "affinity", keyType: [.ipv4Addr], flags: [.dynamic, .timeout],
                                  timeout: .seconds(10800))
            let elements = (0..<100_000).map { index in
                Element([.ipv4("10.\(index >> 16 & 255).\(index >> 8 & 255).\(index & 255)"), .proto(.tcp),
                         .port(UInt16(1 + index % 60000))])
            }
            var tx = Transaction()
            tx.add(table)
            tx.add(set)
            tx.add(affinity)
            tx.add(elements, to: set)
            try connection.commit(tx)
            let contents = try #require(try connection.list(table))
            #expect(contents.elements["endpoints"]?.count == 100_000)
            let read = Set(contents.elements["endpoints"] ?? [])
            #expect(read.count == 100_000)
            #expect(read.isSubset(of: elements))
            #expect(contents.set("affinity") == affinity)
            let text = try namespace.listTable(table)
            #expect(text.contains("flags dynamic,timeout"), "\(text.prefix(400))")
            #expect(text.contains("timeout 3h"), "\(text.prefix(400))")
        }
    }
}

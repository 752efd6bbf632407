import StraitModel
import StraitNFT
import StraitProxy
import Testing
@testable import StraitProxyNFTables

/// A full sync visits the ports in the table's own (hash) order, not by name: what name order
/// decides must come out the same whatever that order is.
@Suite("nftables mode full sync order")
struct NFTablesFullSyncOrderTests {
    let table = Plans.layout.table

    func name(_ text: String) -> ServicePortName {
        ServicePortName(namespace: "default", name: text, port: "http", protocol: .tcp)
    }

    @Test("a full sync of ports claiming one address and port shows the first by name and its slots only")
    func contestedKey() async throws {
        // Eight plain ports on one cluster IP and port, each with its own pool size; "a-3" is first by name.
        let names = ["h-0", "c-1", "f-2", "a-3", "g-4", "b-5", "e-6", "d-7"]
        let plans = names.enumerated().map { index, text in
            Plans.clusterIP(name(text), endpoints: Plans.endpoints(index + 1, from: 10 * index + 1))
        }
        let kernel = FakeNFTKernel()
        let backend = NFTablesBackend(family: .ipv4, options: Plans.options, kernel: kernel)
        let services = ServiceTable(plans.map(Plans.entry))
        try await backend.sync(from: nil, to: services)
        let contents = try #require(try kernel.list(table))
        #expect(contents.elements["service-ips"] == [
            Element(["10.96.0.10", .proto(.tcp), .port(80)], .verdict(.goto("pool-size-4")))])
        let slots = Set(Plans.endpoints(4, from: 31).enumerated().map { slot, endpoint in
            Element(["10.96.0.10", .proto(.tcp), .port(80), .integer(UInt32(slot))],
                    .data([Datum(endpoint.address), .port(8080)]))
        })
        #expect(Set(contents.elements["cluster-endpoints"] ?? []) == slots)
        #expect(contents.elements["cluster-endpoints"]?.count == 4)
        // Nothing left to repair, and a partial sync removing the shown port hands the key to the next ("b-5").
        try await backend.sync(from: nil, to: services)
        #expect(await backend.lastTransaction.isEmpty)
        let without = ServiceTable(plans.filter { $0.name != name("a-3") }.map(Plans.entry))
        try await backend.sync(from: services, to: without)
        let next = try #require(try kernel.list(table))
        #expect(next.elements["service-ips"] == [
            Element(["10.96.0.10", .proto(.tcp), .port(80)], .verdict(.goto("pool-size-6")))])
        #expect(next.elements["cluster-endpoints"]?.count == 6)
    }

    @Test("a port with chains of its own shown for a contested key leaves no shape element; chains come in name order")
    func contestedByChainOwner() async throws {
        let sticky = Plans.clusterIP(name("a-sticky"), endpoints: Plans.endpoints(2), affinity: 60)
        let other = Plans.clusterIP(name("z-sticky"), ip: "10.96.0.20", endpoints: Plans.endpoints(2), affinity: 60)
        let plain = Plans.clusterIP(name("b-plain"), endpoints: Plans.endpoints(3, from: 5))
        let kernel = FakeNFTKernel()
        let backend = NFTablesBackend(family: .ipv4, options: Plans.options, kernel: kernel)
        try await backend.sync(from: nil, to: ServiceTable([other, plain, sticky].map(Plans.entry)))
        let contents = try #require(try kernel.list(table))
        let shown = contents.elements["service-ips"]?.first { $0.key.first == "10.96.0.10" }
        #expect(shown?.value == .verdict(.goto(NFTablesChainName.pool(.cluster, name("a-sticky")))))
        #expect(contents.elements["cluster-endpoints"] ?? [] == [])
        let first = contents.chains.firstIndex { $0.name == NFTablesChainName.pool(.cluster, name("a-sticky")) }
        let last = contents.chains.firstIndex { $0.name == NFTablesChainName.pool(.cluster, name("z-sticky")) }
        #expect(try #require(first) < #require(last))
    }
}

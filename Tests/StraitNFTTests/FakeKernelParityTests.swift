import Foundation
import StraitNFT
import StraitTestSupport
import Testing

/// The fake is only worth its tests if it does what the kernel does: the same transactions, in the
/// same order, against both, must end in equal tables and fail at the same change.
@Suite("StraitNFT fake kernel against the kernel")
struct FakeKernelParityTests {
    /// Steps: each commits or fails in both.
    static var steps: [Transaction] {
        var steps = [Fixture.transaction]
        var flushAndSwap = Transaction()
        flushAndSwap.flush(Fixture.filterInput)
        flushAndSwap.delete([Fixture.serviceElements[0]], from: Fixture.serviceIPs)
        flushAndSwap.add([Element("10.96.0.10", .proto(.tcp), .port(80), verdict: .goto("svc-b"))],
                         to: Fixture.serviceIPs)
        flushAndSwap.delete(Fixture.serviceA)
        flushAndSwap.insert(Rule(in: Fixture.services, .counter))
        steps.append(flushAndSwap)
        var busy = Transaction()
        busy.delete(Fixture.serviceB)
        steps.append(busy)
        var clash = Transaction()
        clash.add([Element("10.96.0.11", .proto(.udp), .port(53), verdict: .goto("services"))], to: Fixture.serviceIPs)
        steps.append(clash)
        var missingElement = Transaction()
        missingElement.add([Element(["10.96.0.77"])], to: Fixture.clusterIPs)
        missingElement.delete([Element(["10.96.0.78"])], from: Fixture.clusterIPs)
        steps.append(missingElement)
        var setInUse = Transaction()
        setInUse.delete(Fixture.clusterIPs)
        steps.append(setInUse)
        var ordered = Transaction()
        ordered.flush(Fixture.natOutput)
        ordered.delete(Fixture.clusterIPs)
        ordered.flush(Fixture.table)
        ordered.flush(Fixture.serviceIPs)
        ordered.delete(Fixture.serviceB)
        steps.append(ordered)
        var again = Transaction()
        again.create(Fixture.services)
        steps.append(again)
        return steps
    }

    @Test("the same transactions leave equal tables in the kernel and the fake, and fail at the same change")
    func sameOutcome() async throws {
        try await withTestNamespaces(1) { namespaces in
            let kernel = try NFTConnection(namespace: namespaces[0].name)
            let fake = FakeNFTKernel()
            for (index, step) in Self.steps.enumerated() {
                let real = Result { () throws(NFTError) in try kernel.commit(step) }
                let faked = Result { () throws(NFTError) in try fake.commit(step) }
                switch (real, faked) {
                case (.success, .success): break
                case (.failure(let a), .failure(let b)):
                    #expect(a.operation == b.operation, "step \(index)")
                    #expect(a.errno == b.errno, "step \(index): kernel \(a), fake \(b)")
                default:
                    Issue.record("step \(index): kernel \(real), fake \(faked)")
                }
                let realTable = try kernel.list(Fixture.table).map(Comparable.init)
                let fakeTable = try fake.list(Fixture.table).map(Comparable.init)
                #expect(realTable == fakeTable, "step \(index)")
            }
        }
    }

    /// A table without what only the kernel decides: handles, orders of hash sets.
    struct Comparable: Equatable {
        var chains: Set<Chain>
        var sets: Set<NFTSet>
        var elements: [String: Set<Element>]
        var rules: [String: [Rule]]

        init(_ contents: TableContents) {
            chains = Set(contents.chains)
            sets = Set(contents.sets)
            elements = contents.elements.mapValues(Set.init)
            rules = contents.rules.mapValues { $0.map(\.rule) }.filter { !$0.value.isEmpty }
        }
    }
}

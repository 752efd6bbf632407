import StraitModel
import StraitProxy
import Testing

@testable import StraitSources

/// The rule that turns three informers into one proxy source, rootless: nothing before every first
/// list, one replace-all, then single changes, and a re-list sent as its differences only.
struct KubeSourceMergeTests {
    func service(_ name: String, version: String = "1") -> KubeObject {
        .service(Service(metadata: ObjectMeta(name: name, namespace: "default", resourceVersion: version),
                         spec: ServiceSpec(clusterIP: "10.96.0.10")))
    }

    let node = KubeObject.node(Node(metadata: ObjectMeta(name: "node-a", resourceVersion: "1")))

    @Test func nothingUntilEveryKindIsListed() {
        var merge = KubeSource.Merge()
        #expect(merge.apply(.listed(.service, [service("a")])).isEmpty)
        #expect(merge.apply(.upsert(service("b"))).isEmpty)
        #expect(merge.apply(.listed(.node, [node])).isEmpty)
        let events = merge.apply(.listed(.endpointSlice, []))
        #expect(events == [.replaceAll([node, service("a"), service("b")])])
        #expect(merge.apply(.upsert(service("c"))) == [.upsert(service("c"))])
    }

    @Test func aRelistSendsOnlyTheDifferences() {
        var merge = KubeSource.Merge()
        _ = merge.apply(.listed(.service, [service("same"), service("changed"), service("gone")]))
        _ = merge.apply(.listed(.endpointSlice, []))
        _ = merge.apply(.listed(.node, [node]))
        let events = merge.apply(.listed(.service, [service("same"), service("changed", version: "2"), service("new")]))
        #expect(Set(events) == [
            .delete(ProxyObjectID(kind: .service, namespace: "default", name: "gone")),
            .upsert(service("changed", version: "2")), .upsert(service("new")),
        ])
        // A re-list of one kind leaves the others alone.
        #expect(merge.apply(.listed(.endpointSlice, [])).isEmpty)
    }
}

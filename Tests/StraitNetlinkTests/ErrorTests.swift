#if canImport(Glibc)
import Glibc
#endif
import StraitNetlink
import StraitTestSupport
import Testing

@Suite("Errors")
struct ErrorTests {
    @Test("deleting a missing link names the operation and the link")
    func deleteMissing() async throws {
        try await withTestNamespaces { namespaces in
            let socket = try NetlinkSocket(namespace: namespaces[0].name)
            let error = try #require(throws: NetlinkError.self) { try socket.deleteLink(named: "nosuch0") }
            #expect(error.operation == "delete link")
            #expect(error.object == "nosuch0")
            #expect(error.errno == ENODEV)
            #expect(error.description.contains("delete link"))
            #expect(error.description.contains("nosuch0"))
            #expect(error.description.contains("No such device"))
        }
    }

    @Test("adding a link under a taken name fails with EEXIST")
    func duplicateName() async throws {
        try await withTestNamespaces { namespaces in
            let socket = try NetlinkSocket(namespace: namespaces[0].name)
            try socket.addLink(.bridge("dup0"))
            let error = try #require(throws: NetlinkError.self) { try socket.addLink(.veth("dup0", peer: "other0")) }
            #expect(error.errno == EEXIST)
            #expect(error.code == .objectExists)
            #expect(error.description == "add link \"dup0\": File exists (EEXIST)")
        }
    }

    @Test("setting a missing link, an unparsable address and a missing namespace each fail clearly")
    func otherFailures() async throws {
        try await withTestNamespaces { namespaces in
            let socket = try NetlinkSocket(namespace: namespaces[0].name)
            let missing = try #require(throws: NetlinkError.self) { try socket.setLink("gone0", up: true) }
            #expect(missing.description.hasPrefix("set link up \"gone0\":"))

            try socket.addTestDevice("d0")
            let address = try #require(throws: NetlinkError.self) { try socket.addAddress("10.0.0.300/24", to: "d0") }
            #expect(address.object == "10.0.0.300/24")
            let mac = try #require(throws: NetlinkError.self) { try socket.setLink("d0", mac: "not-a-mac") }
            #expect(mac.object == "not-a-mac")

            let peer = try #require(throws: NetlinkError.self) {
                try socket.addLink(.veth("v0", peer: "v1", peerNamespace: "strait-t-no-such-namespace"))
            }
            #expect(peer.operation == "open network namespace")
            #expect(Set(try socket.links().map(\.name)) == ["lo", "d0", "d0p"], "nothing half-made is left behind")

            let namespace = try #require(throws: NetlinkError.self) {
                try NetlinkSocket(namespace: "strait-t-no-such-namespace")
            }
            #expect(namespace.errno == ENOENT)
            #expect(namespace.description.contains("/run/netns/strait-t-no-such-namespace"))
        }
    }
}

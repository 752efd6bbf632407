#if canImport(Glibc)
import Glibc
#endif
import StraitNetlink
import StraitTestSupport
import Testing

@Suite("Addresses")
struct AddressTests {
    @Test("IPv4 and IPv6 addresses are added, listed and deleted")
    func addListDelete() async throws {
        try await withTestNamespaces { namespaces in
            let namespace = namespaces[0]
            let socket = try NetlinkSocket(namespace: namespace.name)
            try socket.addTestDevice("d0")

            try socket.addAddress("10.1.0.1/24", to: "d0")
            try socket.addAddress("10.1.0.9", to: "d0")
            try socket.addAddress("fd00:1::1/64", to: "d0", skipDAD: true)
            let seen = try namespace.addresses(of: "d0")
            #expect(seen.contains("10.1.0.1/24"))
            #expect(seen.contains("10.1.0.9/32"), "no prefix means a host prefix, as with ip addr add")
            #expect(seen.contains("fd00:1::1/64"))
            let tentative = try namespace.run(["ip", "-6", "addr", "show", "dev", "d0", "tentative"])
            #expect(!tentative.contains("fd00:1::1"), "nodad makes the address usable at once")

            let listed = try socket.addresses(of: "d0")
            let index = try socket.link(named: "d0").index
            #expect(Set(listed.map(\.address)).isSuperset(of: ["10.1.0.1/24", "10.1.0.9/32", "fd00:1::1/64"]))
            #expect(listed.allSatisfy { $0.linkIndex == index })
            #expect(listed.first { $0.address == "fd00:1::1/64" }?.isIPv6 == true)
            #expect(try socket.addresses().contains { $0.address == "127.0.0.1/8" }, "all devices include lo")

            try socket.deleteAddress("10.1.0.1/24", from: "d0")
            try socket.deleteAddress("fd00:1::1/64", from: "d0")
            let after = try namespace.addresses(of: "d0")
            #expect(!after.contains("10.1.0.1/24"))
            #expect(!after.contains("fd00:1::1/64"))
            #expect(after.contains("10.1.0.9/32"))
        }
    }

    @Test("adding an address twice fails with EEXIST")
    func duplicate() async throws {
        try await withTestNamespaces { namespaces in
            let socket = try NetlinkSocket(namespace: namespaces[0].name)
            try socket.addTestDevice("d0")
            try socket.addAddress("10.1.0.1/24", to: "d0")
            let error = try #require(throws: NetlinkError.self) { try socket.addAddress("10.1.0.1/24", to: "d0") }
            #expect(error.errno == EEXIST)
            #expect(error.description.contains("10.1.0.1/24 dev d0"))
        }
    }
}

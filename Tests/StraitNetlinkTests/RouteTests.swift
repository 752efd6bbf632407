#if canImport(Glibc)
import Glibc
#endif
import StraitNetlink
import StraitTestSupport
import Testing

@Suite("Routes")
struct RouteTests {
    /// A namespace with device d0 up at 10.2.0.1/24 and fd00:2::1/64.
    private func prepared(_ namespace: TestNamespace) throws -> NetlinkSocket {
        let socket = try NetlinkSocket(namespace: namespace.name)
        try socket.addTestDevice("d0")
        try socket.addAddress("10.2.0.1/24", to: "d0")
        try socket.addAddress("fd00:2::1/64", to: "d0", skipDAD: true)
        return socket
    }

    @Test("via a gateway, then replaced by another gateway, then deleted")
    func viaReplaceDelete() async throws {
        try await withTestNamespaces { namespaces in
            let namespace = namespaces[0]
            let socket = try prepared(namespace)
            try socket.addRoute(RouteSpec(destination: "10.3.0.0/24", gateway: "10.2.0.254", device: "d0"))
            var route = try #require(try namespace.routes(["10.3.0.0/24"]).first)
            #expect(route["gateway"] as? String == "10.2.0.254")
            #expect(route["dev"] as? String == "d0")

            let duplicate = try #require(throws: NetlinkError.self) {
                try socket.addRoute(RouteSpec(destination: "10.3.0.0/24", gateway: "10.2.0.254", device: "d0"))
            }
            #expect(duplicate.errno == EEXIST)

            try socket.replaceRoute(RouteSpec(destination: "10.3.0.0/24", gateway: "10.2.0.253", device: "d0"))
            let routes = try namespace.routes(["10.3.0.0/24"])
            #expect(routes.count == 1)
            route = try #require(routes.first)
            #expect(route["gateway"] as? String == "10.2.0.253")

            try socket.deleteRoute(RouteSpec(destination: "10.3.0.0/24"))
            #expect(try namespace.routes(["10.3.0.0/24"]).isEmpty)
        }
    }

    @Test("directly on a device: scope link by default, or an explicit scope")
    func deviceAndScope() async throws {
        try await withTestNamespaces { namespaces in
            let namespace = namespaces[0]
            let socket = try prepared(namespace)
            try socket.addRoute(RouteSpec(destination: "10.4.0.0/24", device: "d0"))
            let route = try #require(try namespace.routes(["10.4.0.0/24"]).first)
            #expect(route["dev"] as? String == "d0")
            #expect(route["scope"] as? String == "link")
            #expect(route["gateway"] == nil)

            try socket.addRoute(RouteSpec(destination: "10.7.0.0/24", device: "d0", scope: .host))
            #expect(try namespace.routes(["10.7.0.0/24"]).first?["scope"] as? String == "host")
            try socket.deleteRoute(RouteSpec(destination: "10.7.0.0/24", device: "d0", scope: .host))
            try socket.deleteRoute(RouteSpec(destination: "10.4.0.0/24", device: "d0"))
            #expect(try namespace.routes(["10.4.0.0/24"]).isEmpty)
            #expect(try namespace.routes(["10.7.0.0/24"]).isEmpty)
        }
    }

    @Test("onlink via a gateway outside every subnet, as flannel routes to a VTEP")
    func onLink() async throws {
        try await withTestNamespaces { namespaces in
            let namespace = namespaces[0]
            let socket = try prepared(namespace)
            let spec = RouteSpec(destination: "10.244.5.0/24", gateway: "10.244.5.0", device: "d0", onLink: true)
            let refused = try #require(throws: NetlinkError.self) {
                try socket.addRoute(RouteSpec(destination: "10.244.5.0/24", gateway: "10.244.5.0", device: "d0"))
            }
            #expect(refused.description.contains("add route"))
            try socket.addRoute(spec)
            let route = try #require(try namespace.routes(["10.244.5.0/24"]).first)
            #expect(route["gateway"] as? String == "10.244.5.0")
            #expect((route["flags"] as? [String])?.contains("onlink") == true)
            try socket.deleteRoute(spec)
            #expect(try namespace.routes(["10.244.5.0/24"]).isEmpty)
        }
    }

    @Test("in another table, and a default route there")
    func table() async throws {
        try await withTestNamespaces { namespaces in
            let namespace = namespaces[0]
            let socket = try prepared(namespace)
            try socket.addRoute(RouteSpec(destination: "10.6.0.0/24", device: "d0", table: 100))
            try socket.addRoute(RouteSpec(destination: "default", gateway: "10.2.0.254", table: 100))
            #expect(try namespace.routes(["10.6.0.0/24"]).isEmpty, "not in the main table")
            let table = try namespace.routes(["table", "100"])
            #expect(table.contains { $0["dst"] as? String == "10.6.0.0/24" && $0["dev"] as? String == "d0" })
            #expect(table.contains { $0["dst"] as? String == "default" && $0["gateway"] as? String == "10.2.0.254" })
            try socket.deleteRoute(RouteSpec(destination: "default", table: 100))
            try socket.deleteRoute(RouteSpec(destination: "10.6.0.0/24", table: 100))
            #expect(try namespace.routes(["table", "100"]).isEmpty)
        }
    }

    @Test("IPv6 via a gateway")
    func ipv6() async throws {
        try await withTestNamespaces { namespaces in
            let namespace = namespaces[0]
            let socket = try prepared(namespace)
            try socket.addRoute(RouteSpec(destination: "fd00:3::/64", gateway: "fd00:2::fe", device: "d0"))
            let route = try #require(try namespace.routes(["fd00:3::/64"], ipv6: true).first)
            #expect(route["gateway"] as? String == "fd00:2::fe")
            try socket.deleteRoute(RouteSpec(destination: "fd00:3::/64", gateway: "fd00:2::fe", device: "d0"))
            #expect(try namespace.routes(["fd00:3::/64"], ipv6: true).isEmpty)
        }
    }
}

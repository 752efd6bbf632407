import StraitNetlink
import StraitTestSupport
import Testing

// This kernel has no IPVS: the suite runs inside scripts/vm (STRAIT_IN_VM=1), which scripts/test starts.
@Suite("IPVS real packets", .enabled(if: inIPVSMachine, "needs IPVS: runs inside scripts/vm"))
struct IPVSPacketTests {
    /// Two namespaces joined by a veth pair: "node" (n0: 10.1.0.1, fd00:1::1) holds the virtual
    /// service addresses on a dummy device, as kube-proxy's kube-ipvs0; "server" (s0: 10.1.0.2,
    /// fd00:1::2) runs the real server and routes everything back through the node.
    private func topology(_ node: TestNamespace, _ server: TestNamespace) throws {
        try node.connect(to: server, localName: "n0", remoteName: "s0")
        try node.run(["ip", "addr", "add", "10.1.0.1/24", "dev", "n0"])
        try node.run(["ip", "-6", "addr", "add", "fd00:1::1/64", "dev", "n0", "nodad"])
        try server.run(["ip", "addr", "add", "10.1.0.2/24", "dev", "s0"])
        try server.run(["ip", "-6", "addr", "add", "fd00:1::2/64", "dev", "s0", "nodad"])
        try server.run(["ip", "route", "add", "default", "via", "10.1.0.1"])
        try server.run(["ip", "-6", "route", "add", "default", "via", "fd00:1::1"])
        try node.run(["ip", "link", "add", "ipvs0", "type", "dummy"])
        try node.run(["ip", "addr", "add", "10.96.0.10/32", "dev", "ipvs0"])
        try node.run(["ip", "-6", "addr", "add", "fd00:96::10/128", "dev", "ipvs0", "nodad"])
    }

    @Test("a TCP connection to a virtual service reaches the real server in another namespace",
          arguments: [("10.96.0.10", "10.1.0.2"), ("fd00:96::10", "fd00:1::2")])
    func connection(virtualAddress: String, serverAddress: String) async throws {
        try await withTestNamespaces(2) { namespaces in
            let (node, server) = (namespaces[0], namespaces[1])
            try topology(node, server)
            // TCP6-LISTEN: one dual-stack socket, so the server answers in both families
            // (the shared startTCPServer listens on IPv4 only).
            try server.run(["sh", "-c", "socat TCP6-LISTEN:8080,fork,reuseaddr SYSTEM:'echo served-by-real-server'"
                            + " >/dev/null 2>&1 &"])
            try server.waitForListener(port: 8080)
            // Nothing listens on the node's port 80: an answer can only come through IPVS.
            #expect(try node.tcpRequest(virtualAddress, 80) == nil)

            let ipvs = try IPVSConnection(namespace: node.name)
            let service = IPVSService(.tcp, address: virtualAddress, port: 80)
            let destination = IPVSDestination(address: serverAddress, port: 8080)
            try ipvs.addService(service)
            try ipvs.addDestination(destination, to: service)
            #expect(try node.tcpRequest(virtualAddress, 80) == "served-by-real-server")

            // The connection was counted on the destination (closed now: inactive, until it expires).
            let counted = try #require(try ipvs.destinations(of: service).first)
            #expect(counted.activeConnections + counted.inactiveConnections >= 1)

            // Weight 0 takes no new connection: IPVS lets the packet through to the node, where nothing listens.
            var drained = destination
            drained.weight = 0
            try ipvs.updateDestination(drained, in: service)
            #expect(try node.tcpRequest(virtualAddress, 80) == nil)
            try ipvs.updateDestination(destination, in: service)
            #expect(try node.tcpRequest(virtualAddress, 80) == "served-by-real-server")

            try ipvs.deleteService(service)
            #expect(try node.tcpRequest(virtualAddress, 80) == nil)
        }
    }
}

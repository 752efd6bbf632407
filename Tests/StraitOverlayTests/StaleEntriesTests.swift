import Foundation
import StraitTestSupport
import Testing

/// Entries left on a node's VXLAN device by a lease that vanished while its agent was down (programmed
/// after the agent last wrote its state file) are swept when the agent starts again; the live peers'
/// entries and default destinations stay.
@Suite(.serialized) struct StaleEntriesTests {
    @Test func aRestartedAgentSweepsNeighbourAndFDBEntriesOfVanishedLeases() async throws {
        try await withTestNamespaces(5) { namespaces in
            let cluster = try OverlayCluster(namespaces, nodes: 2)
            defer { cluster.stopAll(); cluster.removeDirectory() }
            do {
                for node in 0..<2 { try cluster.startAgent(node) }
                let subnet1 = try cluster.waitForSubnet(1)
                _ = try cluster.waitForSubnet(0)
                let mac1 = try cluster.vtepMAC(1)
                try waitUntil("node 0 programs node 1") {
                    try cluster.entries(on: 0, subnet: subnet1, mac: mac1, publicIP: cluster.publicIP(1)).all
                }
                #expect(cluster.stopAgent(0), "the agent exits on SIGTERM")

                // What a vanished peer 10.244.99.0/24 at 192.168.100.99 left behind, and a default destination.
                let stale = (subnet: "10.244.99.0/24", mac: "02:00:00:00:99:01", publicIP: "192.168.100.99")
                let node = cluster.nodes[0]
                try node.run(["ip", "neigh", "add", "10.244.99.0", "lladdr", stale.mac, "dev", "strait.1",
                              "nud", "permanent"])
                try node.run(["bridge", "fdb", "append", stale.mac, "dev", "strait.1", "dst", stale.publicIP])
                try node.run(["bridge", "fdb", "append", "00:00:00:00:00:00", "dev", "strait.1", "dst", "192.168.100.98"])
                #expect(try cluster.entries(on: 0, subnet: stale.subnet, mac: stale.mac, publicIP: stale.publicIP)
                    == .init(route: false, neighbour: true, fdb: true))

                try cluster.startAgent(0)
                try waitUntil("node 0 sweeps the vanished peer's neighbour and FDB entries") {
                    try cluster.entries(on: 0, subnet: stale.subnet, mac: stale.mac, publicIP: stale.publicIP).none
                }
                #expect(cluster.log(0).contains("removed stale neighbour 10.244.99.0"), "\(cluster.log(0))")
                #expect(try cluster.entries(on: 0, subnet: subnet1, mac: mac1, publicIP: cluster.publicIP(1)).all)
                let fdb = try node.run(["bridge", "fdb", "show", "dev", "strait.1"])
                #expect(fdb.contains("00:00:00:00:00:00 dst 192.168.100.98"), "\(fdb)")
            } catch {
                for node in 0..<2 { print("--- node \(node) log ---\n\(cluster.log(node))") }
                throw error
            }
        }
    }
}

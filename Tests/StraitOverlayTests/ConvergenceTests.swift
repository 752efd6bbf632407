import Foundation
import StraitStore
import StraitTestSupport
import Testing

/// How long a lease written to the store takes to become kernel state on a node. Reported, not
/// asserted (tests never assert timings); what is asserted is that every entry appears.
@Suite struct ConvergenceTests {
    @Test func everyLeaseWrittenBecomesRouteNeighbourAndFDB() async throws {
        try await withTestNamespaces(3) { namespaces in
            let cluster = try OverlayCluster(namespaces, nodes: 1)
            defer { cluster.stopAll(); cluster.removeDirectory() }
            try cluster.startAgent(0)
            _ = try cluster.waitForSubnet(0)
            let store = try await openStore(url: cluster.storeURL)
            var latencies: [Duration] = []
            for index in 0..<20 {
                let subnet = "10.244.\(200 + index).0/24"
                let mac = String(format: "02:00:00:00:01:%02x", index)
                let publicIP = "192.168.100.\(100 + index)"
                let value = #"{"PublicIP":"\#(publicIP)","BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"\#(mac)"}}"#
                let start = ContinuousClock.now
                try await store.put("/strait/network/subnets/10.244.\(200 + index).0-24", value: Data(value.utf8))
                while try !cluster.entries(on: 0, subnet: subnet, mac: mac, publicIP: publicIP).all {
                    #expect(ContinuousClock.now - start < .seconds(30), "lease \(subnet) never programmed")
                    if ContinuousClock.now - start > .seconds(30) { break }
                    try await Task.sleep(for: .milliseconds(2))
                }
                latencies.append(ContinuousClock.now - start)
            }
            await store.close()
            latencies.sort()
            print("overlay convergence (SQLite, 20 leases, includes `ip` polling): p50 \(latencies[10]), max \(latencies.last!)")
        }
    }
}

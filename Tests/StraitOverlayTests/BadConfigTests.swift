import Foundation
import StraitStore
import StraitTestSupport
import Testing

/// A config the agent must refuse: it exits non-zero naming the problem, and programs nothing —
/// no device, no routes, no subnet file, no masquerade table.
@Suite struct BadConfigTests {
    static let cases: [(config: String, flags: [String], message: String)] = [
        (#"{"Network":"192.168.0.0/16","SubnetLen":24}"#, [], "overlaps the underlay 192.168.100.0/24"),
        (#"{"Network":"10.244.0.0/16","SubnetLen":8}"#, [], "\"SubnetLen\" 8"),
        (#"{"Network": "10.244.0.0/16", "SubnetLen": 24,"#, [], "not valid JSON"),
        ("garbage", [], "not valid JSON"),
        (#"{"Network":"10.244.0.0/16","Backend":{"Type":"udp"}}"#, [], "udp is not supported"),
        (#"{"Network":"10.244.0.0/16","SubnetLen":24}"#, ["--cluster-cidr", "10.245.0.0/16"], "--cluster-cidr 10.245.0.0/16 disagrees"),
    ]

    @Test(arguments: 0..<cases.count)
    func refusedWithAClearMessageAndNothingProgrammed(_ index: Int) async throws {
        let (config, flags, message) = Self.cases[index]
        try await withTestNamespaces(3) { namespaces in
            let cluster = try OverlayCluster(namespaces, nodes: 1)
            defer { cluster.removeDirectory() }
            let store = try await openStore(url: cluster.storeURL)
            try await store.put("/strait/network/config", value: Data(config.utf8))
            await store.close()
            let output = try cluster.runAgentToExit(0, flags: flags)
            #expect(output.status != 0)
            #expect(output.stderr.contains(message), "stderr: \(output.stderr)")
            #expect(output.stderr.contains("/strait/network/config"), "names the key: \(output.stderr)")
            let node = cluster.nodes[0]
            #expect(try !node.output(["ip", "link", "show", "strait.1"]).succeeded, "no device")
            #expect(try node.run(["ip", "route", "show"]).split(separator: "\n").count == 2, "only the underlay routes")
            #expect(!FileManager.default.fileExists(atPath: cluster.subnetFile(0)), "no subnet file")
            #expect(try !node.output(["nft", "list", "table", "ip", "strait-overlay"]).succeeded, "no nft table")
        }
    }
}

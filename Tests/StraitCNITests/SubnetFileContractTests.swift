import Foundation
import StraitTestSupport
import Testing

/// The subnet file as the overlay writes it, in either naming: strait-cni takes its subnet, MTU and
/// cluster network from it, and masquerades pods itself exactly when the file says the overlay
/// does not (`*_IPMASQ=false`), as flannel's plugin does with `FLANNEL_IPMASQ`.
@Suite struct SubnetFileContractTests {
    @Test(arguments: ["STRAIT_", "FLANNEL_"])
    func podsMasqueradeThemselvesOnlyWhenTheOverlayDoesNot(_ prefix: String) async throws {
        try await withTestNamespaces(3) { namespaces in
            let (node, podA, podB) = (namespaces[0], namespaces[1], namespaces[2])
            let cni = CNIHarness(node: node)
            defer { cni.removeDataDir() }
            try FileManager.default.createDirectory(atPath: cni.dataDir, withIntermediateDirectories: true)
            func file(_ name: String, ipMasq: Bool) throws -> String {
                let path = "\(cni.dataDir)/\(name).env"
                let text = "\(prefix)NETWORK=10.244.0.0/16\n\(prefix)SUBNET=10.244.9.1/24\n\(prefix)MTU=1450\n\(prefix)IPMASQ=\(ipMasq)\n"
                try text.write(toFile: path, atomically: true, encoding: .utf8)
                return path
            }
            func config(_ path: String) -> String {
                // No `subnet` key: the file decides.
                let object: [String: Any] = ["cniVersion": "1.1.0", "name": cni.network, "type": "strait-cni",
                                             "subnetFile": path, "dataDir": cni.dataDir, "bridge": cni.bridge]
                return String(decoding: try! JSONSerialization.data(withJSONObject: object), as: UTF8.self)
            }
            let overlayMasquerades = try cni.add("a", pod: podA, config: config(try file("masq", ipMasq: true)))
            #expect(overlayMasquerades.hasPrefix("10.244.9."))
            #expect(try podA.run(["ip", "-o", "link", "show", "eth0"]).contains("mtu 1450"))
            #expect(try !node.output(["nft", "list", "table", "ip", "strait-masq"]).succeeded, "the overlay masquerades: no pod rule")

            let selfMasquerading = try cni.add("b", pod: podB, config: config(try file("nomasq", ipMasq: false)))
            let table = try node.run(["nft", "list", "table", "ip", "strait-masq"])
            #expect(table.contains(selfMasquerading), "pod b is in the masquerade map: \(table)")
            #expect(table.contains("ip daddr != 10.244.9.0/24") && table.contains("ip daddr != 10.244.0.0/16"),
                    "pod and cluster traffic keep their addresses: \(table)")
            #expect(!table.contains(overlayMasquerades), "pod a is not")
        }
    }
}

import Foundation
import StraitNetlink
import StraitTestSupport
import Testing

@Suite("IPVS family")
struct IPVSFamilyTests {
    @Test("resolving IPVS on a kernel without it fails with familyNotFound, not a crash")
    func resolve() async throws {
        try await withTestNamespaces { namespaces in
            // This kernel is built without IPVS; should a kernel have it, resolving must succeed instead.
            let kernelHasIPVS = FileManager.default.fileExists(atPath: "/proc/net/ip_vs")
                || FileManager.default.fileExists(atPath: "/sys/module/ip_vs")
            if kernelHasIPVS {
                #expect(try IPVSFamily.resolve(namespace: namespaces[0].name).id > 0)
            } else {
                let error = try #require(throws: NetlinkError.self) {
                    try IPVSFamily.resolve(namespace: namespaces[0].name)
                }
                #expect(error.code == .familyNotFound)
                #expect(error.object == "IPVS")
                #expect(error.description.contains("IPVS"))
                #expect(error.description.contains("not found"))
            }
        }
    }

    @Test("the generic socket still works after a failed resolve")
    func socketSurvives() async throws {
        try await withTestNamespaces { namespaces in
            let socket = try NetlinkSocket(.generic, namespace: namespaces[0].name)
            _ = try? IPVSFamily.resolve(on: socket)
            // nlctrl, the controller itself, is always there, at GENL_ID_CTRL.
            #expect(try socket.genericFamily(named: "nlctrl") == 16)
        }
    }
}

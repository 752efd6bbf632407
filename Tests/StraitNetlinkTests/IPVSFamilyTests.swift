import StraitNetlink
import StraitTestSupport
import Testing

@Suite("IPVS family")
struct IPVSFamilyTests {
    @Test("resolving IPVS finds it in the IPVS VM, and fails with familyNotFound (not a crash) without it")
    func resolve() async throws {
        try await withTestNamespaces { namespaces in
            // Decided by the lookup itself: looking for a loaded module would miss a kernel that loads
            // ip_vs on this very lookup (the family has a module alias). In scripts/vm it must be there.
            let outcome = Result { try IPVSFamily.resolve(namespace: namespaces[0].name) }
            switch outcome {
            case .success(let family):
                #expect(family.id > 0)
            case .failure(let failure):
                #expect(!inIPVSMachine, "the IPVS VM's kernel must provide IPVS: \(failure)")
                let error = try #require(failure as? NetlinkError)
                #expect(error.code == .familyNotFound)
                #expect(error.object == "IPVS")
                #expect(error.description.contains("IPVS"))
                #expect(error.description.contains("not found"))
                let connection = try #require(throws: NetlinkError.self) {
                    try IPVSConnection(namespace: namespaces[0].name)
                }
                #expect(connection.code == .familyNotFound)
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

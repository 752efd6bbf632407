import Foundation
import StraitModel
import Testing

@testable import StraitOverlay

/// Who may read what the agent writes: subnet.env 0644 in a 0755 directory, as flannel writes it
/// (every runtime's CNI plugin reads it; it holds no secret); the agent's own state beside it 0600.
/// (The modes are set with fchmod, so the umask cannot widen them; tests leave the process's umask alone,
/// as tests run in parallel.)
@Suite struct StateFileModeTests {
    static func mode(_ path: String) throws -> Int {
        try #require(try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int)
    }

    @Test func subnetFileIsWrittenAsFlannelWritesItAndStateIsPrivate() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("strait-modes-\(UUID())").path
        defer { try? FileManager.default.removeItem(atPath: root) }
        let subnetFile = "\(root)/run/strait/subnet.env"
        let file = SubnetFile(network: try IPv4CIDR(networkParsing: "10.244.0.0/16"),
                              subnet: try IPv4CIDR(networkParsing: "10.244.17.0/24"), mtu: 1450, ipMasq: true)
        try SubnetFileWriter(path: subnetFile).write(file)
        let statePath = OverlayState.path(besideSubnetFile: subnetFile)
        try OverlayState(vtepMAC: "0a:58:0a:f4:11:00", subnet: "10.244.17.0/24").save(statePath)

        #expect(try Self.mode(subnetFile) == 0o644)
        #expect(try Self.mode("\(root)/run/strait") == 0o755)
        #expect(try Self.mode(statePath) == 0o600)
        // Rewriting keeps the modes (each write is a new file renamed over the old one).
        try SubnetFileWriter(path: subnetFile).write(file)
        try OverlayState(vtepMAC: "0a:58:0a:f4:11:00", subnet: "10.244.17.0/24").save(statePath)
        #expect(try Self.mode(subnetFile) == 0o644)
        #expect(try Self.mode(statePath) == 0o600)
    }
}

import Foundation
import StraitTestSupport
import Testing

/// Names a runtime passes are data, never code: strait-cni runs its tools with argument vectors
/// (posix_spawn, no shell), so shell metacharacters in an interface name, a bridge name or a
/// CNI_ARGS value end up as the literal name and nothing runs. Its state is root's alone: the lease
/// directory 0700, the lease book and lock 0600.
@Suite struct HostileNameTests {
    static func mode(_ path: String) throws -> Int {
        try #require(try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int)
    }

    @Test func shellMetacharactersInNamesRunNothing() async throws {
        try await withTestNamespaces(2) { namespaces in
            let (node, pod) = (namespaces[0], namespaces[1])
            var cni = CNIHarness(node: node)
            defer { cni.removeDataDir() }
            let marker = FileManager.default.temporaryDirectory.appendingPathComponent("strait-pwned-\(UUID())").path
            defer { unlink(marker) }
            // Each is a valid Linux interface name (at most 15 bytes, no '/', ':' or white space).
            let ifname = "x;touch${IFS}pw"
            cni.bridge = "b|touch${IFS}q"
            let args = "IgnoreUnknown=1;K8S_POD_NAME=$(touch \(marker))`touch \(marker)`;K8S_POD_NAMESPACE=a&&touch \(marker)"
            let reply = try cni.invoke("ADD", containerID: "hostile", pod: pod, ifname: ifname, args: args)
            #expect(reply.status == 0, "\(reply.stdout) \(reply.stderr)")
            #expect(!FileManager.default.fileExists(atPath: marker), "a shell ran a name")
            // The names are the interfaces' literal names.
            #expect(try pod.output(["ip", "link", "show", "dev", ifname]).succeeded)
            #expect(try node.output(["ip", "link", "show", "dev", cni.bridge]).succeeded)
            let interfaces = (reply.json["interfaces"] as? [[String: Any]] ?? []).compactMap { $0["name"] as? String }
            #expect(interfaces.contains(ifname), "\(interfaces)")

            // The lease state is private, whatever the umask.
            let network = "\(cni.dataDir)/\(cni.network)"
            #expect(try Self.mode(cni.dataDir) == 0o700)
            #expect(try Self.mode(network) == 0o700)
            #expect(try Self.mode("\(network)/leases.0") == 0o600, "the lease book's first slot")
            #expect(try Self.mode("\(network)/lock") == 0o600)

            let deleted = try cni.invoke("DEL", containerID: "hostile", pod: pod, ifname: ifname, args: args)
            #expect(deleted.status == 0, "\(deleted.stdout)")
            #expect(!FileManager.default.fileExists(atPath: marker))
        }
    }
}

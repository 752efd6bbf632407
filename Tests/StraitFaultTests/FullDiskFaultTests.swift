import Foundation
import StraitCNI
import StraitModel
import StraitOverlay
import StraitSystem
import StraitTestSupport
import Testing

/// A full disk (a small tmpfs) while strait-cni writes its IPAM leases and the overlay writes
/// subnet.env and its state file: every write fails with an error naming the file, and the file
/// keeps its previous content byte for byte, with no temporary file left beside it. Once space is
/// back the same write succeeds.
@Suite(.serialized) struct FullDiskFaultTests {
    static let suite = "FullDiskFaultTests"

    /// The built strait-cni, run as a runtime runs it: ADD of container `id` into `pod`, with its
    /// lease book under `dataDir`. The plugin's JSON reply and exit status.
    func cniAdd(_ id: String, node: TestNamespace, pod: TestNamespace, dataDir: String) throws -> CommandOutput {
        let config = """
            {"cniVersion": "1.1.0", "name": "faultnet", "type": "strait-cni", "subnet": "10.250.1.0/24",
             "dataDir": "\(dataDir)", "bridge": "fault0", "mtu": 1400}
            """
        let environment = ["CNI_COMMAND=ADD", "CNI_CONTAINERID=\(id)", "CNI_IFNAME=eth0", "CNI_NETNS=\(pod.path)",
                           "CNI_PATH=/opt/cni/bin", "PATH=/usr/sbin:/usr/bin:/sbin:/bin"]
        return try Command.output(["ip", "netns", "exec", node.name, "env", "-i"] + environment
                                  + [builtProduct("strait-cni")], stdin: config)
    }

    @Test func ipamLeasesOnAFullDisk() async throws {
        try await withSmallTmpfs(kilobytes: 128) { disk in
            try await withTestNamespaces(3) { namespaces in
                let node = namespaces[0], pods = Array(namespaces[1...])
                // The lease book's two slots: the first ADD writes the first, the next the second.
                let book = disk.path + "/faultnet/leases.0", nextSlot = disk.path + "/faultnet/leases.1"
                let first = try cniAdd("c1", node: node, pod: pods[0], dataDir: disk.path)
                #expect(first.succeeded, "the first ADD, with space: \(first.stdout) \(first.stderr)")
                let before = try #require(FileManager.default.contents(atPath: book))
                let filesBefore = try disk.files()

                try disk.fill()
                let refused = try cniAdd("c2", node: node, pod: pods[1], dataDir: disk.path)
                #expect(!refused.succeeded)
                let reply = (try? JSONSerialization.jsonObject(with: Data(refused.stdout.utf8))) as? [String: Any]
                #expect(reply?["code"] as? Int == 5, "CNI I/O failure: \(refused.stdout)")
                let message = "\(reply?["msg"] ?? "") \(reply?["details"] ?? "")"
                #expect(message.contains(nextSlot) && message.contains("No space left on device"), "\(message)")
                let kept = FileManager.default.contents(atPath: book) == before
                #expect(kept, "the lease book is untouched")
                #expect(try disk.files() == filesBefore, "no temporary file is left")
                // The failed ADD took its veth pair back with it.
                let podLinks = try pods[1].run(["ip", "-o", "link"])
                #expect(!podLinks.contains("eth0"), "\(podLinks)")
                let veths = try node.run(["ip", "-o", "link"]).split(separator: "\n").filter { $0.contains("@") }
                #expect(veths.count == 1, "only c1's veth: \(veths)")

                try disk.free()
                let retried = try cniAdd("c2", node: node, pod: pods[1], dataDir: disk.path)
                #expect(retried.succeeded, "with space back: \(retried.stdout) \(retried.stderr)")
                let after = try IPAM.inspect(dataDir: disk.path, network: "faultnet").map(\.containerID)
                #expect(after.sorted() == ["c1", "c2"], "\(after)")
                reportFigure(suite: Self.suite, "strait-cni ADD refused on a full disk, lease book kept byte for byte",
                             "\(!refused.succeeded && kept ? 1 : 0)/1")
            }
        }
    }

    @Test func overlayFilesOnAFullDisk() async throws {
        try await withSmallTmpfs(kilobytes: 64) { disk in
            let subnetPath = disk.path + "/run/subnet.env"
            let statePath = OverlayState.path(besideSubnetFile: subnetPath)
            let writer = SubnetFileWriter(path: subnetPath)
            let network = try IPv4CIDR(networkParsing: "10.244.0.0/16")
            try writer.write(SubnetFile(network: network, subnet: try IPv4CIDR(networkParsing: "10.244.1.0/24"),
                                        mtu: 1450, ipMasq: true))
            var state = OverlayState(vtepMAC: "0a:58:0a:f4:01:01", subnet: "10.244.1.0/24")
            try state.save(statePath)
            let subnetBefore = try #require(FileManager.default.contents(atPath: subnetPath))
            let stateBefore = try #require(FileManager.default.contents(atPath: statePath))
            let filesBefore = try disk.files()

            try disk.fill()
            let newSubnet = SubnetFile(network: network, subnet: try IPv4CIDR(networkParsing: "10.244.2.0/24"),
                                       mtu: 1450, ipMasq: true)
            var subnetError = ""
            do { try writer.write(newSubnet) } catch { subnetError = "\(error)" }
            #expect(subnetError.contains(subnetPath) && subnetError.contains("No space left on device"),
                    "\(subnetError)")
            state.vtepMAC = "0a:58:0a:f4:02:01"
            state.subnet = "10.244.2.0/24"
            var stateError = ""
            do { try state.save(statePath) } catch { stateError = "\(error)" }
            #expect(stateError.contains(statePath) && stateError.contains("No space left on device"), "\(stateError)")
            #expect(FileManager.default.contents(atPath: subnetPath) == subnetBefore, "subnet.env is untouched")
            #expect(FileManager.default.contents(atPath: statePath) == stateBefore, "the VTEP MAC file is untouched")
            #expect(OverlayState.load(statePath)?.vtepMAC == "0a:58:0a:f4:01:01")
            #expect(try disk.files() == filesBefore, "no temporary file is left")

            try disk.free()
            try writer.write(newSubnet)
            try state.save(statePath)
            let newSubnetCIDR = try IPv4CIDR(networkParsing: "10.244.2.0/24")
            #expect(writer.previousSubnet() == newSubnetCIDR)
            #expect(OverlayState.load(statePath)?.vtepMAC == "0a:58:0a:f4:02:01")
            let refused = [subnetError, stateError].filter { $0.contains("No space left on device") }.count
            reportFigure(suite: Self.suite, "overlay writes refused on a full disk, previous file kept",
                         "\(refused)/2")
        }
    }

    /// Space for part of the new content only: the write starts, runs out mid-file, and the
    /// half-written temporary file is removed; the old content stays.
    @Test func writeRunningOutMidFile() async throws {
        try await withSmallTmpfs(kilobytes: 64) { disk in
            let path = disk.path + "/leases.json"
            let old = Array(repeating: UInt8(ascii: "o"), count: 1000)
            try writeFileAtomically(path, old)
            try disk.fill(leaving: 4096)
            let new = Array(repeating: UInt8(ascii: "n"), count: 3 * 4096)
            var failure: FileError?
            do throws(FileError) { try writeFileAtomically(path, new) } catch { failure = error }
            #expect(failure?.errno == ENOSPC && failure?.path == path, "\(String(describing: failure))")
            #expect(FileManager.default.contents(atPath: path) == Data(old))
            #expect(try disk.files() == ["leases.json"], "no temporary file is left")
            try disk.free()
            try writeFileAtomically(path, new)
            #expect(FileManager.default.contents(atPath: path) == Data(new))
        }
    }
}

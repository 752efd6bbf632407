import Foundation
import StraitNetlink
import StraitTestSupport
import Testing

@Suite("Neighbours and FDB")
struct NeighbourTests {
    @Test("a permanent neighbour entry is set, replaced and deleted")
    func permanentNeighbour() async throws {
        try await withTestNamespaces { namespaces in
            let namespace = namespaces[0]
            let socket = try NetlinkSocket(namespace: namespace.name)
            try socket.addTestDevice("d0")
            try socket.addAddress("10.2.0.1/24", to: "d0")

            try socket.setNeighbour(NeighbourSpec(address: "10.2.0.5", mac: "02:00:00:00:00:05", device: "d0"))
            var entry = try #require(try namespace.json(["ip", "-j", "neigh", "show", "dev", "d0"]).first)
            #expect(entry["dst"] as? String == "10.2.0.5")
            #expect(entry["lladdr"] as? String == "02:00:00:00:00:05")
            #expect((entry["state"] as? [String]) == ["PERMANENT"])

            try socket.setNeighbour(NeighbourSpec(address: "10.2.0.5", mac: "02:00:00:00:00:06", device: "d0"))
            let entries = try namespace.json(["ip", "-j", "neigh", "show", "dev", "d0"])
            #expect(entries.count == 1)
            entry = try #require(entries.first)
            #expect(entry["lladdr"] as? String == "02:00:00:00:00:06")

            try socket.deleteNeighbour(NeighbourSpec(address: "10.2.0.5", mac: "02:00:00:00:00:06", device: "d0"))
            #expect(try namespace.json(["ip", "-j", "neigh", "show", "dev", "d0"]).isEmpty)
        }
    }

    @Test("two all-zeros FDB entries appended on a vxlan device, then deleted one by one")
    func fdbAppendAndDelete() async throws {
        try await withTestNamespaces { namespaces in
            let namespace = namespaces[0]
            let socket = try NetlinkSocket(namespace: namespace.name)
            try socket.addLink(.vxlan("vx0", VXLANSpec(vni: 1, port: 8472)))
            let zeros = FDBEntry.allZerosMAC
            try socket.appendFDB(FDBEntry(mac: zeros, device: "vx0", destination: "192.168.60.2"))
            try socket.appendFDB(FDBEntry(mac: zeros, device: "vx0", destination: "192.168.60.3"))
            try socket.replaceFDB(FDBEntry(mac: "02:00:00:00:00:07", device: "vx0", destination: "192.168.60.7"))

            func entries() throws -> [(mac: String, destination: String, permanent: Bool)] {
                try namespace.json(["bridge", "-j", "fdb", "show", "dev", "vx0"]).compactMap { entry in
                    guard let mac = entry["mac"] as? String, let destination = entry["dst"] as? String else {
                        return nil
                    }
                    return (mac, destination, entry["state"] as? String == "permanent")
                }
            }
            var seen = try entries()
            #expect(Set(seen.filter { $0.mac == zeros }.map(\.destination)) == ["192.168.60.2", "192.168.60.3"])
            #expect(seen.contains { $0.mac == "02:00:00:00:00:07" && $0.destination == "192.168.60.7" })
            #expect(seen.allSatisfy { $0.permanent })

            try socket.deleteFDB(FDBEntry(mac: zeros, device: "vx0", destination: "192.168.60.2"))
            seen = try entries()
            #expect(seen.filter { $0.mac == zeros }.map(\.destination) == ["192.168.60.3"])

            try socket.deleteFDB(FDBEntry(mac: zeros, device: "vx0", destination: "192.168.60.3"))
            try socket.deleteFDB(FDBEntry(mac: "02:00:00:00:00:07", device: "vx0", destination: "192.168.60.7"))
            #expect(try entries().isEmpty)

            let missing = try #require(throws: NetlinkError.self) {
                try socket.deleteFDB(FDBEntry(mac: zeros, device: "vx0", destination: "192.168.60.3"))
            }
            #expect(missing.description.contains("delete fdb"))
        }
    }
}

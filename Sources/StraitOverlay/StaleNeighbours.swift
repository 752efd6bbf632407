import StraitModel
import StraitNetlink

/// The VXLAN backend's sweep after a full listing, beside `StaleRoutes`: permanent neighbour and FDB
/// entries on its devices that belong to no lease the route table holds. A lease that vanished while the
/// agent was down, programmed after the agent last wrote its state file, leaves them (harmless, a MAC
/// nobody uses, but an operator reading `bridge fdb` should see only live peers). FDB entries with the
/// all-zeros MAC (default destinations) are never the agent's and stay.
///
/// Equivalent: `ip neigh show dev strait.1 nud permanent`, `bridge fdb show dev strait.1`, and
/// `ip neigh del` / `bridge fdb del` for each entry no lease explains.
struct StaleNeighbours {
    let netlink: NetlinkSocket

    /// What a device should hold for its live peers, compared as parsed addresses and lower-case MACs.
    struct Wanted {
        /// VTEP address → VTEP MAC.
        private(set) var neighbours: [IPAddress: String] = [:]
        /// VTEP MAC → remote VTEP (public) address.
        private(set) var fdb: [String: IPAddress] = [:]

        mutating func add(_ neighbour: NeighbourSpec, _ fdbEntry: FDBEntry) {
            if let address = IPAddress(neighbour.address) { neighbours[address] = neighbour.mac.lowercased() }
            if let destination = IPAddress(fdbEntry.destination) { fdb[fdbEntry.mac.lowercased()] = destination }
        }

        func holds(_ entry: NeighbourEntry) -> Bool {
            switch entry.kind {
            case .neighbour: IPAddress(entry.address).map { neighbours[$0] == entry.mac.lowercased() } ?? true
            case .fdb: entry.mac == FDBEntry.allZerosMAC || fdb[entry.mac.lowercased()] == IPAddress(entry.address)
            }
        }
    }

    /// Removes every permanent entry on `device` that `wanted` does not hold; returns what it removed.
    func remove(on device: String, keeping wanted: Wanted) -> [String] {
        guard let index = try? netlink.link(named: device).index,
              let entries = try? netlink.permanentNeighbours(onLink: index) else { return [] }
        var removed: [String] = []
        for entry in entries where !wanted.holds(entry) {
            switch entry.kind {
            case .neighbour:
                let neighbour = NeighbourSpec(address: entry.address, mac: entry.mac, device: device)
                if (try? netlink.deleteNeighbour(neighbour)) != nil {
                    removed.append("neighbour \(entry.address) lladdr \(entry.mac) dev \(device)")
                }
            case .fdb:
                let fdb = FDBEntry(mac: entry.mac, device: device, destination: entry.address)
                if (try? netlink.deleteFDB(fdb)) != nil {
                    removed.append("fdb \(entry.mac) dev \(device) dst \(entry.address)")
                }
            }
        }
        return removed
    }
}

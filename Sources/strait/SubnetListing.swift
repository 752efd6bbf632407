import StraitOverlay
import StraitProxy
import StraitSources
import StraitStore

/// `strait get subnets`: the overlay's shared route table — every node's subnet lease in the store.
enum SubnetListing {
    static func render(_ store: ObjectStore) async throws -> String {
        let (items, _) = try await store.store.list(prefix: OverlayKeys.subnets)
        let leases = items.compactMap { SubnetLease(key: $0.key, value: $0.value) }.sorted { $0.subnet < $1.subnet }
        let rows = [["SUBNET", "PUBLIC-IP", "BACKEND", "VTEP-MAC"]] + leases.map { lease in
            [lease.subnet.description, lease.publicIP.description, lease.backendType, lease.vtepMAC ?? "<none>"]
        }
        let widths = rows[0].indices.map { column in rows.map { $0[column].count }.max() ?? 0 }
        return rows.map { row in
            row.enumerated().map { index, cell in
                index == row.count - 1 ? cell : cell.padding(toLength: widths[index] + 3, withPad: " ", startingAt: 0)
            }.joined()
        }.joined(separator: "\n") + "\n"
    }
}

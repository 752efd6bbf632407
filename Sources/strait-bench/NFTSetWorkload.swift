import StraitNFT

/// `nft-set NETNS COUNT`: commits table `ip benchtable` with set `benchset`
/// (`ipv4_addr . inet_proto . inet_service`) and COUNT distinct elements in one StraitNFT batch inside
/// the existing namespace NETNS, timing only the commit, then deletes the table.
/// Reference: `ip netns exec NETNS nft -f FILE` with the same table, set and elements.
func nftSetWorkload(_ arguments: [String]) throws {
    guard arguments.count == 2, let count = Int(arguments[1]), count > 0 else {
        throw NFTSetUsage()
    }
    let connection = try NFTConnection(namespace: arguments[0])
    let table = Table(.ip, "benchtable")
    let set = NFTSet(table: table, name: "benchset", keyType: [.ipv4Addr, .inetProto, .inetService])

    let start = monotonicSeconds()
    var transaction = Transaction()
    transaction.add(table)
    transaction.add(set)
    transaction.add((0..<count).map(benchElement), to: set)
    try connection.commit(transaction)
    let elapsed = monotonicSeconds() - start

    var cleanup = Transaction()
    cleanup.delete(table)
    try connection.commit(cleanup)
    print("seconds=\(elapsed)")
}

/// Element `index`: addresses 10.0.0.0 upward, alternating tcp and udp, ports 1–60000.
func benchElement(_ index: Int) -> Element {
    let address = "10.\((index >> 16) & 0xff).\((index >> 8) & 0xff).\(index & 0xff)"
    return Element([.ipv4(address), .proto(index % 2 == 0 ? .tcp : .udp), .port(UInt16(1 + index % 60000))])
}

struct NFTSetUsage: Error, CustomStringConvertible {
    var description: String { "usage: strait-bench nft-set NETNS COUNT" }
}

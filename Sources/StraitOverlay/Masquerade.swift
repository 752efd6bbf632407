import StraitModel
import StraitNFT

/// Masquerade of pod traffic that leaves the cluster network, in a table of the overlay's own.
///
/// Equivalent:
///
///     table ip strait-overlay {
///         chain postrouting {
///             type nat hook postrouting priority srcnat;
///             ip saddr 10.244.0.0/16 ip daddr != 10.244.0.0/16 masquerade
///         }
///     }
public struct Masquerade: Sendable {
    public static let table = Table(.ip, "strait-overlay")
    public let network: IPv4CIDR
    private let connection: NFTConnection

    public init(network: IPv4CIDR) throws(OverlayError) {
        self.network = network
        do { connection = try NFTConnection() } catch {
            throw OverlayError(.kernel, "cannot open nftables: \(error)")
        }
    }

    /// Installs the rule, replacing whatever the table held, in one transaction.
    public func enable() throws(OverlayError) {
        let chain = Chain(table: Self.table, name: "postrouting",
                          base: BaseChain(type: .nat, hook: .postrouting, priority: Priority.srcnat))
        var transaction = Transaction()
        transaction.add(Self.table)
        transaction.flush(Self.table)
        transaction.add(chain)
        transaction.add(Rule(in: chain, prefixMatch(offset: 12, .eq), prefixMatch(offset: 16, .neq), .masquerade()))
        do { try connection.commit(transaction) } catch {
            throw OverlayError(.kernel, "cannot install masquerade for \(network) in \(Self.table): \(error)")
        }
    }

    /// Removes the table (`--ip-masq=false`); absent is fine.
    public func disable() {
        guard (try? connection.tables(.ip))?.contains(where: { $0.name == Self.table.name }) == true else { return }
        var transaction = Transaction()
        transaction.delete(Self.table)
        try? connection.commit(transaction)
    }

    /// `ip saddr|daddr [!=] NETWORK`: the IPv4 header's address at `offset`, masked, compared.
    private func prefixMatch(offset: UInt32, _ op: CmpOp) -> [Expression] {
        [
            .payload(base: .network, offset: offset, length: 4, dreg: .reg1),
            .bitwise(sreg: .reg1, dreg: .reg1, length: 4, mask: network.netmask.octets, xor: [0, 0, 0, 0]),
            .cmp(op, sreg: .reg1, data: network.network.octets),
        ]
    }
}

import StraitModel
import StraitNFT

/// Masquerade of pod traffic that leaves the cluster network (`--ip-masq`), in a table of the
/// overlay's own per family (`ip6 strait-overlay` likewise for a dual-stack network).
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
    public static let ipv6Table = Table(.ip6, "strait-overlay")
    public let network: IPv4CIDR
    public let ipv6: IPv6CIDR?
    private let connection: NFTConnection

    public init(network: IPv4CIDR, ipv6: IPv6CIDR? = nil) throws(OverlayError) {
        self.network = network
        self.ipv6 = ipv6
        do { connection = try NFTConnection() } catch {
            throw OverlayError(.kernel, "cannot open nftables: \(error)")
        }
    }

    /// Installs the rules, replacing whatever the tables held, in one transaction.
    public func enable() throws(OverlayError) {
        var transaction = Transaction()
        add(Self.table, .ipv4(network.network.description), network.prefixLength, .ipSaddr, .ipDaddr, to: &transaction)
        if let ipv6 {
            add(Self.ipv6Table, .ipv6(ipv6.network.description), ipv6.prefixLength, .ip6Saddr, .ip6Daddr,
                to: &transaction)
        }
        do { try connection.commit(transaction) } catch {
            let what = [network.description] + (ipv6.map { [$0.description] } ?? [])
            throw OverlayError(.kernel, "cannot install masquerade for \(what.joined(separator: ", ")) "
                + "in \(Self.table): \(error)")
        }
    }

    private func add(_ table: Table, _ prefix: Datum, _ length: Int, _ source: KeyField, _ destination: KeyField,
                     to transaction: inout Transaction) {
        let chain = Chain(table: table, name: "postrouting",
                          base: BaseChain(type: .nat, hook: .postrouting, priority: Priority.srcnat))
        transaction.add(table)
        transaction.flush(table)
        transaction.add(chain)
        transaction.add(Rule(in: chain,
                             .match(source, inPrefix: prefix, length: length),
                             .match(destination, inPrefix: prefix, length: length, negated: true),
                             .masquerade()))
    }

    /// Removes the tables (`--ip-masq` not given); absent is fine.
    public func disable() {
        for table in [Self.table, Self.ipv6Table] {
            let present = (try? connection.tables(table.family))?.contains { $0.name == table.name } ?? false
            guard present else { continue }
            var transaction = Transaction()
            transaction.delete(table)
            try? connection.commit(transaction)
        }
    }
}

#if canImport(Glibc)
import Glibc
#endif
import StraitModel
import StraitSystem

/// One pod address, leased to one (containerID, ifname).
public struct Lease: Sendable, Hashable {
    public var containerID: String
    public var ifname: String
    public var address: IPAddress
    public var subnet: IPCIDR
    /// The attachment's hostPort mappings, kept with its leases so DEL and GC can remove them.
    public var portMappings: [PortMapping]?
    /// Whether the attachment's traffic is masqueraded (`ipMasq`), for the same reason.
    public var masquerade: Bool?
}

/// Which attachment a lease belongs to, as GC's `cni.dev/valid-attachments` names them.
public struct AttachmentKey: Sendable, Hashable {
    public var containerID: String
    public var ifname: String

    public init(containerID: String, ifname: String) {
        self.containerID = containerID
        self.ifname = ifname
    }
}

/// Strait's address management: the leases of one network in a lease book under `dataDir/<network>`,
/// read and rewritten whole under an exclusive file lock. The book is written in place into one of two
/// slot files, never over the one holding the current book (see `LeaseBookFile`), so a plugin killed
/// at any point leaves the old book or the new one, never a torn one, and two leases can never share
/// an address. Nothing is fsynced: a crash of the node loses its pods with the book.
public struct IPAM: Sendable {
    /// The on-disk state: every lease, and per subnet the last address handed out (round-robin).
    struct LeaseBook: Equatable {
        var leases: [Lease] = []
        var lastReserved: [String: IPAddress] = [:]
    }

    public let directory: String
    var lockPath: String { "\(directory)/lock" }
    /// Where the book lives: two slot files written in turn.
    var file: LeaseBookFile { LeaseBookFile(directory: directory) }

    public init(dataDir: String, network: String) {
        directory = "\(dataDir)/\(network)"
    }

    /// Leases one address from each pool to (containerID, ifname). `requested` are static addresses
    /// (CNI_ARGS `IP=`, the `ips` capability): each must fall in one pool and be free. An attachment
    /// that already holds a lease in a pool keeps it (a retried ADD gets the same address).
    public func allocate(_ key: AttachmentKey, pools: [AddressPool], requested: [IPAddress],
                         portMappings: [PortMapping] = [], masquerade: Bool = false) throws(CNIError) -> [Lease] {
        for address in requested where !pools.contains(where: { $0.contains(address) }) {
            throw CNIError(.addressUnavailable, "requested address \(address) is not in the node subnet",
                           details: pools.map { "\($0.first)-\($0.last)" }.joined(separator: ", "))
        }
        return try update { book throws(CNIError) in
            var granted: [Lease] = []
            for pool in pools {
                if let index = book.leases.firstIndex(where: { $0.key == key && pool.contains($0.address) }) {
                    book.leases[index].portMappings = portMappings.isEmpty ? nil : portMappings
                    book.leases[index].masquerade = masquerade ? true : nil
                    granted.append(book.leases[index])
                    continue
                }
                let taken = Set(book.leases.map(\.address))
                let address: IPAddress
                if let wanted = requested.first(where: { pool.contains($0) }) {
                    guard !taken.contains(wanted) else {
                        throw CNIError(.addressUnavailable, "requested address \(wanted) is leased to another container")
                    }
                    address = wanted
                } else {
                    address = try Self.nextFree(in: pool, taken: taken, after: book.lastReserved[pool.subnet.description])
                    book.lastReserved[pool.subnet.description] = address
                }
                let lease = Lease(containerID: key.containerID, ifname: key.ifname, address: address, subnet: pool.subnet,
                                  portMappings: portMappings.isEmpty ? nil : portMappings, masquerade: masquerade ? true : nil)
                book.leases.append(lease)
                granted.append(lease)
            }
            return granted
        }
    }

    /// Releases every lease of (containerID, ifname); returns what was released (empty is fine: DEL
    /// is idempotent).
    @discardableResult
    public func release(_ key: AttachmentKey) throws(CNIError) -> [Lease] {
        try update { book in
            let released = book.leases.filter { $0.key == key }
            book.leases.removeAll { $0.key == key }
            return released
        }
    }

    /// Releases every lease whose attachment is not in `valid`; returns what was released.
    @discardableResult
    public func collectGarbage(keeping valid: Set<AttachmentKey>) throws(CNIError) -> [Lease] {
        try update { book in
            let stale = book.leases.filter { !valid.contains($0.key) }
            book.leases.removeAll { !valid.contains($0.key) }
            return stale
        }
    }

    /// The current leases, read under the lock.
    public func leases() throws(CNIError) -> [Lease] {
        try update { book in book.leases }
    }

    /// How many addresses of `pool` are free.
    public func freeCount(in pool: AddressPool) throws(CNIError) -> UInt64 {
        let used = try leases().filter { pool.contains($0.address) }.count
        return pool.capacity - UInt64(used)
    }

    /// Round-robin: the first free address after the last one handed out, so a freed address is
    /// not given to the next pod at once.
    static func nextFree(in pool: AddressPool, taken: Set<IPAddress>, after last: IPAddress?) throws(CNIError) -> IPAddress {
        var candidate = last.map(pool.successor) ?? pool.first
        // Beyond `taken.count + 1` steps a free address must have turned up, unless the pool is full.
        let limit = min(pool.capacity, UInt64(taken.count) + 1)
        for _ in 0..<limit {
            if !taken.contains(candidate) { return candidate }
            candidate = pool.successor(of: candidate)
        }
        throw CNIError(.poolExhausted, "no free address left in \(pool.subnet)",
                       details: "\(pool.capacity) addresses, all leased; GC or DEL frees stale ones")
    }

    /// Reads the book under the lock, lets `change` edit it, and writes it back if it changed.
    private func update<T>(_ change: (inout LeaseBook) throws(CNIError) -> T) throws(CNIError) -> T {
        do throws(FileError) { try makeDirectories(directory) } catch {
            throw CNIError(.ioFailure, "cannot create the IPAM directory", details: error.description)
        }
        let lock: FileLock
        do throws(FileError) { lock = try FileLock(path: lockPath) } catch {
            throw CNIError(.ioFailure, "cannot lock the IPAM directory", details: error.description)
        }
        let loaded = try readBook()
        let original = loaded.book ?? LeaseBook()
        var book = original
        let result = try change(&book)
        if book != original {
            do throws(FileError) { try file.write(book.text, after: loaded) } catch {
                throw CNIError(.ioFailure, "cannot write the IPAM leases \(error.path)", details: error.description)
            }
        }
        _ = consume lock
        return result
    }

    private func readBook() throws(CNIError) -> LeaseBookFile.Loaded<LeaseBook> {
        var loaded: LeaseBookFile.Loaded<LeaseBook>
        do throws(FileError) { loaded = try file.read { try? LeaseBook(text: $0) } } catch {
            throw CNIError(.ioFailure, "cannot read the IPAM leases", details: error.description)
        }
        if loaded.book == nil {
            let existing = file.existingPaths
            // None yet; or lost to a crash of the previous boot, with every pod it named: start over.
            guard existing.isEmpty || file.predatesBoot() else {
                throw CNIError(.ioFailure, "the IPAM leases in \(existing.joined(separator: ", ")) are corrupt",
                               details: "no file holds a whole lease book")
            }
            loaded.book = LeaseBook()
        }
        return loaded
    }

    /// The leases of a network as its lease book holds them, read without the lock and without
    /// creating anything: for inspection (tests, an operator's tools), not for allocation.
    public static func inspect(dataDir: String, network: String) throws(FileError) -> [Lease] {
        try IPAM(dataDir: dataDir, network: network).file.read { try? LeaseBook(text: $0) }.book?.leases ?? []
    }
}

extension Lease {
    var key: AttachmentKey { AttachmentKey(containerID: containerID, ifname: ifname) }
}

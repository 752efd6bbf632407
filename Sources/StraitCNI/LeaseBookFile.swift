#if canImport(Glibc)
import Glibc
#endif
import StraitSystem

/// How the lease book reaches the disk: two slot files, `leases.0` and `leases.1`, each created by the
/// first write that needs it and from then on written in place: never renamed, truncated or fsynced.
///
/// A slot is a header line `strait-leases v1 generation=N bytes=L fnv1a64=H`, then the book's JSON
/// (L bytes, hash H), then blanks where an older, longer book was. A write goes to the slot that does
/// not hold the current book, with the next generation, in one `pwrite`; the reader takes the valid
/// slot with the highest generation. So a plugin killed at any point, even mid-write, leaves the
/// previous book readable: the torn slot fails its length or hash and the other slot still holds what
/// every earlier ADD and DEL wrote. All of it happens under the IPAM lock, so two leases never share
/// an address.
///
/// Why not a new file renamed over the old one, as before: on ext4 the rename of a freshly written
/// file over an existing one forces its blocks out (auto_da_alloc) and the create and unlink wait on
/// the journal; on a node whose disk is busy that cost a mean 12 ms (worst 150 ms) against 40 µs for
/// an in-place write (measured in BENCHMARKS.md, "CNI ADD against the kernel floor").
///
/// Nothing is fsynced: only a kernel crash or power failure can lose data not yet written back, and
/// those kill every pod the book names, so a book from an earlier boot is stale whole. A store in
/// which no book can be read *and* whose files were all last written before this boot starts over
/// empty; one that cannot be read now is an error naming the files. (The reference `host-local`
/// plugin does not fsync either, and has no such recovery.)
///
/// `leases.json`, the single file earlier versions replaced by rename, is still read while no slot
/// holds a book, and removed once one does.
struct LeaseBookFile {
    /// A book as read: the book (nil when there is none, or none that can be read), its generation,
    /// and where it came from.
    struct Loaded<Book> {
        var book: Book?
        var generation: UInt64 = 0
        /// The slot it was read from; nil for the legacy file or no book.
        var slot: Int?
        var fromLegacyFile = false
    }

    let directory: String

    var slotPaths: [String] { ["\(directory)/leases.0", "\(directory)/leases.1"] }
    var legacyPath: String { "\(directory)/leases.json" }

    /// The current book: the slot with the highest generation whose length and hash hold and whose
    /// text `parse` accepts (one it refuses is treated as torn), else the legacy file's.
    /// Only the newest valid slot's text is parsed, unless `parse` refuses it.
    func read<Book>(_ parse: (String) -> Book?) throws(FileError) -> Loaded<Book> {
        var valid: [(slot: Int, generation: UInt64, text: String)] = []
        for (slot, path) in slotPaths.enumerated() {
            guard let bytes = try Self.contents(path), let (generation, text) = Self.parse(bytes) else { continue }
            valid.append((slot, generation, text))
        }
        // Newest first; on a tie, slot 0.
        if valid.count == 2 && valid[1].generation > valid[0].generation { valid.swapAt(0, 1) }
        for candidate in valid {
            if let book = parse(candidate.text) {
                return Loaded(book: book, generation: candidate.generation, slot: candidate.slot)
            }
        }
        if let bytes = try Self.contents(legacyPath) {
            return Loaded(book: parse(String(decoding: bytes, as: UTF8.self)), fromLegacyFile: true)
        }
        return Loaded()
    }

    /// Paths of the store's files that exist: the ones a "cannot be read" names.
    var existingPaths: [String] { (slotPaths + [legacyPath]).filter { access($0, F_OK) == 0 } }

    /// Writes `text` as the next generation after `current`, into the slot that does not hold it.
    /// A slot this call created is removed again when the write fails (a full disk), so a failed
    /// write leaves the directory as it was; a slot it overwrote in part no longer validates.
    /// Equivalent: `printf 'strait-leases v1 …\n%s' "$TEXT" | dd of=SLOT conv=notrunc`.
    func write<Book>(_ text: String, after current: Loaded<Book>) throws(FileError) {
        let path = slotPaths[current.slot == 0 ? 1 : 0]
        let body = Array(text.utf8)
        var bytes = Array("strait-leases v1 generation=\(current.generation &+ 1) bytes=\(body.count) ".utf8)
        bytes += Array("fnv1a64=\(Self.hex(Self.fnv1a64(body)))\n".utf8) + body + [UInt8(ascii: "\n")]
        var created = false
        var fd = open(path, O_WRONLY | O_CLOEXEC)
        if fd < 0 && errno == ENOENT {
            fd = try fileCall("create", path) { open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600) }
            created = true
        } else if fd < 0 {
            throw FileError(operation: "open", path: path, errno: errno)
        }
        var failure: FileError?
        var status = stat()
        if fstat(fd, &status) == 0 && Int(status.st_size) > bytes.count {
            // Blanks over the rest of an older, longer book: the file reads clean with `cat`.
            bytes += [UInt8](repeating: UInt8(ascii: " "), count: Int(status.st_size) - bytes.count - 1) + [10]
        }
        bytes.withUnsafeBytes { raw in
            do throws(FileError) { try writeAll(fd, raw, at: 0, path: path) } catch { failure = error }
        }
        // Some file systems report a full disk only when the file is closed.
        if close(fd) != 0 && failure == nil && errno != EINTR {
            failure = FileError(operation: "close", path: path, errno: errno)
        }
        if let failure {
            if created { unlink(path) }
            throw failure
        }
        if current.fromLegacyFile { unlink(legacyPath) }
    }

    /// True when every file of the store was last modified before the running kernel booted.
    func predatesBoot() -> Bool {
        let paths = existingPaths
        return !paths.isEmpty && paths.allSatisfy(Self.predatesBoot)
    }

    /// The generation and text of a slot's bytes, or nil when it is torn (or not a slot at all).
    static func parse(_ bytes: [UInt8]) -> (generation: UInt64, text: String)? {
        guard let newline = bytes.firstIndex(of: UInt8(ascii: "\n")) else { return nil }
        let fields = bytes[..<newline].split(separator: UInt8(ascii: " ")).map { String(decoding: $0, as: UTF8.self) }
        guard fields.count == 5, fields[0] == "strait-leases", fields[1] == "v1",
              let generation = value(fields[2], "generation=").flatMap({ UInt64($0) }),
              let length = value(fields[3], "bytes=").flatMap({ Int($0) }),
              let hash = value(fields[4], "fnv1a64=").flatMap({ UInt64($0, radix: 16) }),
              length >= 0, length <= bytes.count - newline - 1 else { return nil }
        let body = Array(bytes[(newline + 1)..<(newline + 1 + length)])
        guard fnv1a64(body) == hash else { return nil }
        return (generation, String(decoding: body, as: UTF8.self))
    }

    private static func value(_ field: String, _ prefix: String) -> String? {
        field.hasPrefix(prefix) ? String(field.dropFirst(prefix.count)) : nil
    }

    /// FNV-1a, 64 bits: enough to tell a torn write from a whole one (not a defence against forgery:
    /// whoever can write the file can write any lease).
    static func fnv1a64(_ bytes: [UInt8]) -> UInt64 {
        var hash = FNV1a()
        hash.add(bytes)
        return hash.value
    }

    private static func hex(_ value: UInt64) -> String { HexDigits.text(value, count: 16) }

    /// The whole file, or nil when it does not exist.
    private static func contents(_ path: String) throws(FileError) -> [UInt8]? {
        do throws(FileError) { return try readFileBytes(path, bufferSize: 4096) } catch {
            if error.errno == ENOENT { return nil }
            throw error
        }
    }

    /// True when `path` was last modified before the running kernel booted.
    static func predatesBoot(_ path: String) -> Bool {
        var status = stat()
        guard stat(path, &status) == 0 else { return false }
        var realtime = timespec(), sinceBoot = timespec()
        clock_gettime(CLOCK_REALTIME, &realtime)
        clock_gettime(CLOCK_BOOTTIME, &sinceBoot)
        let bootedAt = Int(realtime.tv_sec) - Int(sinceBoot.tv_sec) - 1
        return Int(status.st_mtim.tv_sec) < bootedAt
    }
}

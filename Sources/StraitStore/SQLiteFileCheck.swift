#if canImport(Glibc)
import Glibc
#endif

/// Looks at an existing store file before SQLite opens it for writing, so a damaged file is
/// refused with its name instead of being "repaired": SQLite takes an empty file for a new
/// database (the store would silently start over) and only finds a truncated one wrong when a
/// query reaches the missing pages. The file is only read. (A new store never exists empty:
/// `SQLiteStore` links it into place whole.)
///
/// Checked: the file is not empty, starts with SQLite's magic, is a whole number of pages, and
/// is not shorter than the page count its header records (when that count is valid). Damage
/// inside the pages is `PRAGMA quick_check`'s job (see `SQLiteStore.init`).
/// Equivalent: `head -c 100 store.db | od -c`; `stat -c %s store.db`.
enum SQLiteFileCheck {
    /// nil when `path` is absent (a new store) or looks whole; otherwise what is wrong with it.
    static func problem(_ path: String) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 {
            if errno == ENOENT { return nil }
            return "cannot be read: \(String(cString: strerror(errno)))"
        }
        defer { close(fd) }
        var status = stat()
        guard fstat(fd, &status) == 0 else { return "cannot be read: \(String(cString: strerror(errno)))" }
        let size = Int64(status.st_size)
        if size == 0 { return "is empty (0 bytes), not an SQLite database" }
        var header = [UInt8](repeating: 0, count: 100)
        let count = header.withUnsafeMutableBytes { pread(fd, $0.baseAddress, 100, 0) }
        guard count == 100, Array(header[0..<16]) == Array("SQLite format 3\0".utf8) else {
            return "is not an SQLite database (\(size) bytes without SQLite's header)"
        }
        // Bytes 16-17: the page size, big-endian; 1 means 65536.
        let rawPageSize = Int64(header[16]) << 8 | Int64(header[17])
        let pageSize = rawPageSize == 1 ? 65536 : rawPageSize
        guard pageSize >= 512, pageSize & (pageSize - 1) == 0 else {
            return "is corrupt: its header gives a page size of \(rawPageSize)"
        }
        if size % pageSize != 0 {
            return "is truncated: \(size) bytes is not a whole number of \(pageSize)-byte pages"
        }
        // Bytes 28-31: the page count, valid when the change counter (24-27) equals bytes 92-95. A
        // checkpoint cut short may leave the file shorter than that while the WAL still holds the
        // pages; SQLite finishes it, so the count is only held against a file without a WAL.
        let pages = header[28..<32].reduce(Int64(0)) { $0 << 8 | Int64($1) }
        var wal = stat()
        let walHoldsPages = stat(path + "-wal", &wal) == 0 && wal.st_size > 0
        if !walHoldsPages, header[24..<28].elementsEqual(header[92..<96]), pages > 0, size < pages * pageSize {
            return "is truncated: \(size) bytes, its header records \(pages) pages of \(pageSize) bytes"
        }
        return nil
    }
}

#if canImport(Glibc)
import Glibc
#endif
import StraitSystem

/// How the lease book reaches the disk: replaced whole by a rename, without fsync.
///
/// A rename is atomic for every process, so a plugin killed at any point leaves the old book or
/// the new one, never a torn one. Only a kernel crash or power failure can lose data not yet
/// written back, and those kill every pod the book names: a book from an earlier boot is stale
/// whole. So the book is not forced to the disk on every ADD and DEL (an fsync costs a journal
/// commit, tens of milliseconds on a busy disk, as much as all the rest of an ADD); instead a
/// book that cannot be read *and* was last written before this boot starts over empty.
/// (The reference `host-local` plugin does not fsync either, and has no such recovery.)
enum LeaseBookFile {
    /// Replaces `path` with `bytes`: a temporary file beside it, renamed over it (0600).
    /// Equivalent: `cat >PATH.tmp.PID && mv PATH.tmp.PID PATH`.
    static func replace(_ path: String, with bytes: [UInt8]) throws(FileError) {
        try writeFileAtomically(path, bytes, durable: false)
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

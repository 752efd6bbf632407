import Foundation
import StraitTestSupport

/// A small tmpfs mounted on a directory this test makes, to run out of space on purpose; unmounted
/// and removed afterwards, also when `body` throws.
/// Equivalent: `mount -t tmpfs -o size=256k tmpfs DIR … umount DIR`.
func withSmallTmpfs<T>(kilobytes: Int = 256, _ body: (SmallTmpfs) async throws -> T) async throws -> T {
    try requireRoot()
    let directory = NSTemporaryDirectory() + "strait-fault-tmpfs-\(getpid())-\(UUID().uuidString.prefix(8))"
    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: false)
    defer { try? FileManager.default.removeItem(atPath: directory) }
    try Command.run(["mount", "-t", "tmpfs", "-o", "size=\(kilobytes)k,mode=0700", "tmpfs", directory])
    defer {
        if (try? Command.output(["umount", directory]))?.succeeded != true {
            _ = try? Command.output(["umount", "-l", directory])
        }
    }
    return try await body(SmallTmpfs(path: directory))
}

struct SmallTmpfs {
    let path: String
    var filler: String { path + "/filler" }

    /// Fills every free byte with a filler file (dd stops at ENOSPC), then frees `leaving` bytes
    /// of it again (tmpfs counts whole pages).
    func fill(leaving free: Int = 0) throws {
        _ = try Command.output(["dd", "if=/dev/zero", "of=\(filler)", "bs=4096", "conv=notrunc", "oflag=append"])
        if free > 0 { try Command.run(["truncate", "-s", "-\(free)", filler]) }
    }

    /// Removes the filler: the space is back.
    func free() throws {
        try FileManager.default.removeItem(atPath: filler)
    }

    /// Names of the files under the mount (temporary files left behind would show here).
    func files(under directory: String? = nil) throws -> [String] {
        let root = directory ?? path
        return (FileManager.default.subpaths(atPath: root) ?? []).filter { !$0.hasSuffix("filler") }.sorted()
    }
}

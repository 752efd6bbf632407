#if canImport(Glibc)
import Glibc
#endif

/// The whole content of a file as UTF-8 text.
public func readTextFile(_ path: String) throws(FileError) -> String {
    let fd = try fileCall("open", path) { open(path, O_RDONLY | O_CLOEXEC) }
    defer { close(fd) }
    var bytes: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 16384)
    while true {
        let count = try fileCall("read", path) { Int32(read(fd, &buffer, buffer.count)) }
        if count == 0 { break }
        bytes.append(contentsOf: buffer[0..<Int(count)])
    }
    return String(decoding: bytes, as: UTF8.self)
}

/// Replaces `path` with `bytes` so a reader (or a crash) sees the old content or the new, never a
/// mix: write a temporary file beside it, fsync it, rename it over. (The directory is not fsynced:
/// a rename lost to a power failure loses only leases of pods that did not survive it either.)
/// Any failure (a full disk fails the write, the fsync or the close) removes the temporary file and
/// leaves `path` as it was; the error names `path`.
/// Equivalent: `cat > path.tmp.PID && sync path.tmp.PID && mv path.tmp.PID path`.
public func writeFileAtomically(_ path: String, _ bytes: [UInt8]) throws(FileError) {
    let temporary = "\(path).tmp.\(getpid())"
    let fd = try fileCall("create a temporary file to write", temporary) {
        open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
    }
    var written = 0
    var failure: FileError?
    bytes.withUnsafeBytes { raw in
        while written < raw.count {
            let count = write(fd, raw.baseAddress! + written, raw.count - written)
            if count < 0 && errno == EINTR { continue }
            if count < 0 {
                failure = FileError(operation: "write", path: path, errno: errno)
                return
            }
            written += count
        }
    }
    if failure == nil && fsync(fd) != 0 { failure = FileError(operation: "fsync", path: path, errno: errno) }
    // Some file systems report a full disk only when the file is closed.
    if close(fd) != 0 && failure == nil && errno != EINTR {
        failure = FileError(operation: "close", path: path, errno: errno)
    }
    if let failure {
        unlink(temporary)
        throw failure
    }
    do throws(FileError) {
        try fileCall("rename \(temporary) over", path) { rename(temporary, path) }
    } catch {
        unlink(temporary)
        throw error
    }
}

/// Creates a directory and its parents, like `mkdir -p`.
public func makeDirectories(_ path: String) throws(FileError) {
    var current = path.hasPrefix("/") ? "" : "."
    for component in path.split(separator: "/") {
        current += "/\(component)"
        if mkdir(current, 0o755) != 0 && errno != EEXIST {
            throw FileError(operation: "mkdir", path: current, errno: errno)
        }
    }
}

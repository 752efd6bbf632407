#if canImport(Glibc)
import Glibc
#endif

/// The whole content of a file as UTF-8 text.
public func readTextFile(_ path: String) throws(FileError) -> String {
    String(decoding: try readFileBytes(path), as: UTF8.self)
}

/// The whole content of a file, read `bufferSize` bytes at a time.
/// Equivalent: `cat path`.
public func readFileBytes(_ path: String, bufferSize: Int = 16384) throws(FileError) -> [UInt8] {
    let fd = try fileCall("open", path) { open(path, O_RDONLY | O_CLOEXEC) }
    defer { close(fd) }
    var bytes: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: bufferSize)
    while true {
        let count = try fileCall("read", path) { Int32(read(fd, &buffer, buffer.count)) }
        if count == 0 { return bytes }
        bytes.append(contentsOf: buffer[0..<Int(count)])
    }
}

/// Writes every byte of `bytes` to `fd`, at `offset` (pwrite) when given, else at the file's position,
/// going on after a partial write or a signal. A failure throws naming `operation` and `path`; a write
/// that moves nothing counts as EIO (none should: it would otherwise loop forever).
/// Equivalent: what `cat > path` does with its buffer.
public func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer, at offset: off_t? = nil,
                     operation: String = "write", path: String) throws(FileError) {
    var written = 0
    while written < bytes.count {
        let start = bytes.baseAddress! + written, remaining = bytes.count - written
        let count = offset.map { pwrite(fd, start, remaining, $0 + off_t(written)) } ?? write(fd, start, remaining)
        if count < 0 && errno == EINTR { continue }
        if count <= 0 { throw FileError(operation: operation, path: path, errno: count == 0 ? EIO : errno) }
        written += count
    }
}

/// Replaces `path` with `bytes` so a reader (or a crash) sees the old content or the new, never a
/// mix: write a temporary file beside it, fsync it, rename it over. (The directory is not fsynced:
/// a rename lost to a power failure loses only leases of pods that did not survive it either.)
/// Any failure (a full disk fails the write, the fsync or the close) removes the temporary file and
/// leaves `path` as it was; the error names `path`. The file gets exactly `mode` (0600 unless said
/// otherwise: state is root's alone), whatever the umask.
/// `durable: false` skips the fsync, for state that a crash of the machine makes stale anyway
/// (the rename alone still keeps every process from seeing a torn file).
/// Equivalent: `cat > path.tmp.PID && chmod 600 path.tmp.PID && sync path.tmp.PID && mv path.tmp.PID path`.
public func writeFileAtomically(
    _ path: String, _ bytes: [UInt8], mode: mode_t = 0o600, durable: Bool = true
) throws(FileError) {
    let temporary = "\(path).tmp.\(getpid())"
    let fd = try fileCall("create a temporary file to write", temporary) {
        open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode)
    }
    var failure: FileError?
    if fchmod(fd, mode) != 0 { failure = FileError(operation: "chmod", path: temporary, errno: errno) }
    if failure == nil {
        bytes.withUnsafeBytes { raw in
            do throws(FileError) { try writeAll(fd, raw, path: path) } catch { failure = error }
        }
    }
    if failure == nil && durable && fsync(fd) != 0 { failure = FileError(operation: "fsync", path: path, errno: errno) }
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

/// Creates a directory and its parents, like `mkdir -p -m 700`: the ones it creates get `mode`
/// (0700 unless said otherwise; the umask can only narrow it); existing ones are left as they are.
/// The whole path is tried first: where it exists already (every CNI ADD but a node's first) that is one
/// system call, not one per component.
public func makeDirectories(_ path: String, mode: mode_t = 0o700) throws(FileError) {
    if mkdir(path, mode) == 0 || errno == EEXIST { return }
    var current = path.hasPrefix("/") ? "" : "."
    for component in path.split(separator: "/") {
        current += "/\(component)"
        if mkdir(current, mode) != 0 && errno != EEXIST {
            throw FileError(operation: "mkdir", path: current, errno: errno)
        }
    }
}

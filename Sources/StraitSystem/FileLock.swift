#if canImport(Glibc)
import Glibc
#endif

/// An exclusive `flock` on a file, held until the value is dropped (or the process exits, also on SIGKILL).
public struct FileLock: ~Copyable {
    private let fd: Int32

    public init(path: String) throws(FileError) {
        let fd = try fileCall("open", path) { open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600) }
        while flock(fd, LOCK_EX) != 0 {
            if errno == EINTR { continue }
            let failure = FileError(operation: "flock", path: path, errno: errno)
            close(fd)
            throw failure
        }
        self.fd = fd
    }

    deinit { close(fd) }
}

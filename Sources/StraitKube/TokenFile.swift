import Foundation
import NIOConcurrencyHelpers

/// A bearer token in a file that may be replaced at any time (the kubelet rotates projected
/// service-account tokens by swapping a symlink). Read again whenever the file's identity, size
/// or modification time changes; one `stat` per request otherwise.
final class TokenFile: Sendable {
    let path: String
    private struct Cached { var stamp: [Int]; var token: String }
    private let cached = NIOLockedValueBox<Cached?>(nil)

    init(path: String) { self.path = path }

    func current(operation: String) throws(KubeError) -> String {
        var info = stat()
        guard stat(path, &info) == 0 else {
            throw KubeError(.configuration, operation: operation,
                            detail: "token file \(path): \(String(cString: strerror(errno)))")
        }
        let stamp = [Int(info.st_ino), Int(info.st_size), Int(info.st_mtim.tv_sec), Int(info.st_mtim.tv_nsec)]
        if let hit = cached.withLockedValue({ $0 }), hit.stamp == stamp { return hit.token }
        guard let data = FileManager.default.contents(atPath: path),
              let text = String(data: data, encoding: .utf8) else {
            throw KubeError(.configuration, operation: operation, detail: "token file \(path) cannot be read")
        }
        let token = text.trimmingCharacters(in: .whitespacesAndNewlines)
        cached.withLockedValue { $0 = Cached(stamp: stamp, token: token) }
        return token
    }
}

import CNftablesShim

#if canImport(Glibc)
import Glibc
#endif

/// Runs work on a fresh thread that has entered a named network namespace, so sockets opened there
/// belong to that namespace for life while the calling thread stays where it is.
/// (StraitNetlink has its own namespace helper; this module keeps these few lines to stay independent.)
enum NamespaceThread {
    /// Runs `body` inside `/run/netns/NAME` on a dedicated pthread and waits for it.
    /// Equivalent: `ip netns exec NAME …` for one piece of code.
    static func run<T>(inNamespace name: String, _ body: () throws(NFTError) -> T) throws(NFTError) -> T {
        try withoutActuallyEscaping(body) { (escapable) throws(NFTError) -> T in
            let work = Work<T>(namespace: name, body: escapable)
            var thread = pthread_t()
            let context = Unmanaged.passRetained(work).toOpaque()
            let created = pthread_create(&thread, nil, { context in
                let work = Unmanaged<AnyWork>.fromOpaque(context!).takeRetainedValue()
                work.run()
                return nil
            }, context)
            guard created == 0 else {
                Unmanaged<AnyWork>.fromOpaque(context).release()
                throw NFTError(operation: "start thread for network namespace \(name)", errno: created)
            }
            pthread_join(thread, nil)
            return try work.result!.get()
        }
    }

    private class AnyWork {
        func run() {}
    }

    private final class Work<T>: AnyWork {
        let namespace: String
        let body: () throws(NFTError) -> T
        var result: Result<T, NFTError>?

        init(namespace: String, body: @escaping () throws(NFTError) -> T) {
            self.namespace = namespace
            self.body = body
        }

        override func run() {
            let path = "/run/netns/\(namespace)"
            let fd = open(path, O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else {
                result = .failure(NFTError(operation: "open network namespace \(path)", errno: errno))
                return
            }
            defer { close(fd) }
            guard strait_nft_enter_network_namespace(fd) == 0 else {
                result = .failure(NFTError(operation: "enter network namespace \(namespace)", errno: errno))
                return
            }
            result = Result { () throws(NFTError) -> T in try body() }
        }
    }
}

import Foundation
import StraitNetlink
import StraitTestSupport
import Testing

/// "net:[4026531840]": the network namespace the calling thread is in.
private func currentThreadNamespace() throws -> String {
    try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/thread-self/ns/net")
}

/// The same form for a namespace file such as /run/netns/NAME.
private func namespaceIdentity(of path: String) throws -> String {
    var info = stat()
    #expect(stat(path, &info) == 0)
    return "net:[\(info.st_ino)]"
}

@Suite("Network namespaces")
struct NamespaceTests {
    @Test("a closure runs inside the namespace; the calling thread never leaves its own")
    func runInside() async throws {
        try await withTestNamespaces { namespaces in
            let namespace = namespaces[0]
            try namespace.run(["ip", "link", "add", "marker0", "type", "bridge"])
            let before = try currentThreadNamespace()

            let (inside, sawMarker) = try NetworkNamespace.run(named: namespace.name) {
                (try currentThreadNamespace(), if_nametoindex("marker0") != 0)
            }
            #expect(inside == (try namespaceIdentity(of: namespace.path)))
            #expect(inside != before)
            #expect(sawMarker, "the closure sees the namespace's devices")
            #expect(try currentThreadNamespace() == before)
            #expect(if_nametoindex("marker0") == 0, "the caller still sees its own devices")

            let byPath = try NetworkNamespace.run(named: namespace.path) { try currentThreadNamespace() }
            #expect(byPath == inside)
        }
    }

    @Test("errors thrown inside the closure reach the caller")
    func errorsPropagate() async throws {
        struct Marker: Error {}
        try await withTestNamespaces { namespaces in
            let before = try currentThreadNamespace()
            #expect(throws: Marker.self) { try NetworkNamespace.run(named: namespaces[0].name) { throw Marker() } }
            #expect(try currentThreadNamespace() == before)
        }
    }

    @Test("on the calling thread: the closure runs inside the namespace on this thread, which then returns")
    func runOnCallingThread() async throws {
        try await withTestNamespaces { namespaces in
            let namespace = namespaces[0]
            try namespace.run(["ip", "link", "add", "marker0", "type", "bridge"])
            let (before, thread) = (try currentThreadNamespace(), pthread_self())
            let (inside, insideThread, sawMarker) = try NetworkNamespace.runOnCallingThread(named: namespace.name) {
                (try currentThreadNamespace(), pthread_self(), if_nametoindex("marker0") != 0)
            }
            #expect(inside == (try namespaceIdentity(of: namespace.path)))
            #expect(insideThread == thread, "no other thread ran it")
            #expect(sawMarker)
            #expect(try currentThreadNamespace() == before)
            #expect(if_nametoindex("marker0") == 0)

            let socket = try NetlinkSocket(namespace: namespace.name, onCallingThread: true)
            #expect(try currentThreadNamespace() == before)
            #expect(try socket.links().map(\.name).sorted() == ["lo", "marker0"])
        }
    }

    @Test("on the calling thread: an error inside, or a namespace that is not there, leaves the thread at home")
    func runOnCallingThreadFailures() async throws {
        struct Marker: Error {}
        try await withTestNamespaces { namespaces in
            let before = try currentThreadNamespace()
            #expect(throws: Marker.self) {
                try NetworkNamespace.runOnCallingThread(named: namespaces[0].name) { throw Marker() }
            }
            #expect(try currentThreadNamespace() == before)
            let missing = "/run/netns/strait-no-such-namespace"
            let error = #expect(throws: NetlinkError.self) {
                try NetworkNamespace.runOnCallingThread(named: missing) { Issue.record("the closure ran") }
            }
            #expect(error?.description.contains(missing) == true, "the error names the namespace")
            #expect(try currentThreadNamespace() == before)
        }
    }

    @Test("a socket made in a namespace keeps working there from any thread")
    func socketInNamespace() async throws {
        try await withTestNamespaces(2) { namespaces in
            let first = try NetlinkSocket(namespace: namespaces[0].name)
            let second = try NetlinkSocket(namespace: namespaces[1].name)
            try first.addLink(.bridge("only0"))
            let seen = try await Task.detached { try first.links().map(\.name) }.value
            #expect(seen == ["lo", "only0"])
            #expect(try second.links().map(\.name) == ["lo"])
            #expect(try namespaces[0].linkNames() == ["lo", "only0"])
        }
    }
}

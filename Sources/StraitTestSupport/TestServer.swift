import Foundation

extension TestNamespace {
    /// Starts a TCP server on `port` in this namespace that answers every connection with `reply`
    /// and closes it; one process per connection, so it never stops listening between clients.
    /// It runs until the namespace is deleted (the harness kills what runs inside).
    /// Equivalent: `socat TCP-LISTEN:PORT,fork,reuseaddr SYSTEM:'echo REPLY' &`.
    public func startTCPServer(port: Int, reply: String) throws {
        try run(["sh", "-c", "socat TCP-LISTEN:\(port),fork,reuseaddr SYSTEM:'echo \(reply)' >/dev/null 2>&1 &"])
        try waitForListener(port: port)
    }

    /// Connects to `host:port` from this namespace and returns what the server sent (trimmed);
    /// nil when the connection fails within `timeout` seconds.
    public func tcpRequest(_ host: String, _ port: Int, timeout: Int = 3) throws -> String? {
        let output = try self.output(["timeout", "\(timeout + 1)", "nc", "-w", "\(timeout)", host, "\(port)"])
        let text = output.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        return output.succeeded && !text.isEmpty ? text : nil
    }

    /// True when `ping` gets an answer from `host` (one packet, short deadline).
    public func ping(_ host: String) throws -> Bool {
        try output(["ping", "-c", "1", "-W", "2", host]).succeeded
    }

    /// Waits (at most 5 s) until something listens on TCP `port` here.
    public func waitForListener(port: Int) throws {
        for _ in 0..<100 {
            if try run(["ss", "-Hltn", "sport = :\(port)"]).contains("LISTEN") { return }
            usleep(50_000)
        }
        throw CommandFailure(arguments: ["listen", "\(port)"], output: nil, reason: "nothing listens on port \(port) in \(name)")
    }
}

import Foundation

/// A real etcd cluster for tests: `count` `TestEtcd` members (Debian's `/usr/bin/etcd`) on one
/// host address — 127.0.0.1, or an address inside a test namespace, reached from the test's other
/// namespaces over its topology — each with its own data dir, client and peer port. Members are
/// started together (none answers `/health` before a quorum is up), stopped and crashed by PID.
///
/// Equivalent: `etcd --name m0 --initial-cluster m0=http://H:P0,m1=http://H:P1,m2=… &` per member.
public final class TestEtcdCluster: @unchecked Sendable {
    public let members: [TestEtcd]
    public let namespace: TestNamespace?

    private init(members: [TestEtcd], namespace: TestNamespace?) {
        self.members = members
        self.namespace = namespace
    }

    /// The `--store` value naming every member: `etcd://H:P0,H:P1,H:P2`.
    public var storeURL: String {
        "etcd://" + members.map { "\($0.host):\($0.clientPort)" }.joined(separator: ",")
    }

    /// Starts `count` members and waits until each answers healthy. In a namespace, member N listens
    /// on 2379 + 2N (clients) and 2380 + 2N (peers); on the host, on free ports below the ephemeral range.
    public static func start(count: Int = 3, namespace: TestNamespace? = nil,
                             host: String = "127.0.0.1") async throws -> TestEtcdCluster {
        guard FileManager.default.isExecutableFile(atPath: TestEtcd.binary) else {
            throw CommandFailure(arguments: [TestEtcd.binary], output: nil,
                                 reason: "etcd not found: apt-get install etcd-server")
        }
        var members: [TestEtcd] = []
        var taken: Set<Int> = []
        /// A free port no other member was given (each is only free, not yet bound, when picked).
        func distinctFreePort() throws -> Int {
            var port = try freeTCPPort()
            while taken.contains(port) { port = try freeTCPPort() }
            taken.insert(port)
            return port
        }
        do {
            for index in 0..<count {
                var ports = (client: 2379 + 2 * index, peer: 2380 + 2 * index)
                if namespace == nil { ports = (try distinctFreePort(), try distinctFreePort()) }
                members.append(try TestEtcd(tls: false, namespace: namespace, host: host, name: "member\(index)",
                                            ports: ports))
            }
            let initialCluster = members.map { "\($0.name)=\($0.peerURL)" }.joined(separator: ",")
            for member in members { member.initialCluster = initialCluster }
            let cluster = TestEtcdCluster(members: members, namespace: namespace)
            try await cluster.startAll()
            return cluster
        } catch {
            for member in members { member.remove() }
            throw error
        }
    }

    /// Runs `body` against a fresh cluster, removed afterwards whether `body` throws or not.
    public static func with<T>(count: Int = 3, namespace: TestNamespace? = nil, host: String = "127.0.0.1",
                               _ body: (TestEtcdCluster) async throws -> T) async throws -> T {
        let cluster = try await start(count: count, namespace: namespace, host: host)
        defer { cluster.remove() }
        return try await body(cluster)
    }

    /// Starts every stopped member (on its data dir and ports), then waits until all are healthy.
    public func startAll() async throws {
        for member in members where member.pid == nil { try member.spawn() }
        for member in members { try await member.waitUntilHealthy() }
    }

    /// Stops every member (SIGTERM, then SIGKILL after 5 s).
    public func stopAll() {
        for member in members { member.stop() }
    }

    public func remove() {
        for member in members { member.remove() }
    }

    /// A member's view of the cluster, from etcd's `Maintenance/Status` (`etcdctl endpoint status`).
    public struct MemberStatus: Sendable {
        public var memberID: String
        public var leaderID: String
        public var raftTerm: UInt64
    }

    /// `POST /v3/maintenance/status` on the member's JSON gateway; nil when it does not answer.
    public func status(of member: TestEtcd) throws -> MemberStatus? {
        let probe = ["curl", "-sf", "--max-time", "2", "-X", "POST", "\(member.clientURL)/v3/maintenance/status",
                     "-d", "{}"]
        let output = try namespace.map { try $0.output(probe) } ?? Command.output(probe)
        guard output.succeeded,
              let json = try? JSONSerialization.jsonObject(with: Data(output.stdout.utf8)) as? [String: Any],
              let header = json["header"] as? [String: Any], let memberID = header["member_id"] as? String,
              let leader = json["leader"] as? String else { return nil }
        return MemberStatus(memberID: memberID, leaderID: leader,
                            raftTerm: UInt64(json["raftTerm"] as? String ?? "") ?? 0)
    }

    /// The member that is the leader now, as the running members report it; nil while none is.
    public func leader() throws -> TestEtcd? {
        for member in members where member.pid != nil {
            guard let status = try status(of: member), status.leaderID != "0" else { continue }
            if status.memberID == status.leaderID { return member }
        }
        return nil
    }
}

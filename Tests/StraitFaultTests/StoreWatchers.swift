import Foundation
import StraitTestSupport

/// What the etcd fault test reads and writes around the agents and the proxy: leases through etcd's
/// JSON gateway, Services through the built `strait apply`, the proxy's rules with `iptables-save`.
/// Everything runs in the underlay namespace (where etcd is) or in the proxy's node namespace.
struct StoreWatchers {
    let etcd: TestEtcdCluster
    let underlay: TestNamespace
    let proxyNode: TestNamespace
    let storeURL: String
    let directory: String

    /// A subnet lease in etcd: its key, and the store lease (TTL) it is bound to.
    struct SubnetKey: Hashable, CustomStringConvertible {
        var key: String
        var leaseID: String
        var description: String { "\(key) (lease \(leaseID))" }
    }

    /// `POST path` with a JSON body to the first running member's gateway; nil when none answers.
    func gateway(_ path: String, _ body: [String: Any]) throws -> [String: Any]? {
        let json = String(decoding: try JSONSerialization.data(withJSONObject: body), as: UTF8.self)
        for member in etcd.members where member.pid != nil {
            let output = try underlay.output(["curl", "-sf", "--max-time", "3", "-X", "POST",
                                              "\(member.clientURL)\(path)", "-d", json])
            if output.succeeded, let object = try? JSONSerialization.jsonObject(with: Data(output.stdout.utf8)) {
                return object as? [String: Any]
            }
        }
        return nil
    }

    static func b64(_ text: String) -> String { Data(text.utf8).base64EncodedString() }

    /// Every subnet lease key (`/strait/network/subnets/…`) with its store lease.
    func subnetKeys() throws -> Set<SubnetKey> {
        let prefix = "/strait/network/subnets/"
        let end = "/strait/network/subnets0"  // '/' + 1
        guard let answer = try gateway("/v3/kv/range", ["key": Self.b64(prefix), "range_end": Self.b64(end)]) else {
            throw CommandFailure(arguments: ["etcd range", prefix], output: nil, reason: "no etcd member answered")
        }
        return Set((answer["kvs"] as? [[String: Any]] ?? []).compactMap { kv in
            guard let key = (kv["key"] as? String).flatMap({ Data(base64Encoded: $0) }) else { return nil }
            return SubnetKey(key: String(decoding: key, as: UTF8.self), leaseID: kv["lease"] as? String ?? "none")
        })
    }

    /// The seconds the store lease has left, from `LeaseTimeToLive`; nil when etcd does not answer.
    func secondsLeft(_ leaseID: String) throws -> Int? {
        guard let answer = try gateway("/v3/lease/timetolive", ["ID": leaseID]) else { return nil }
        return (answer["TTL"] as? String).flatMap(Int.init)
    }

    /// Writes a key directly (as another node's agent would).
    func put(_ key: String, _ value: String) throws {
        guard try gateway("/v3/kv/put", ["key": Self.b64(key), "value": Self.b64(value)]) != nil else {
            throw CommandFailure(arguments: ["etcd put", key], output: nil, reason: "no etcd member answered")
        }
    }

    /// A Service with one port and its EndpointSlice with one ready endpoint.
    static func manifest(_ name: String, clusterIP: String, endpoint: String) -> String {
        """
        apiVersion: v1
        kind: Service
        metadata: {name: \(name), namespace: default}
        spec:
          clusterIP: \(clusterIP)
          ports: [{name: http, port: 80, targetPort: 8080, protocol: TCP}]
        ---
        apiVersion: discovery.k8s.io/v1
        kind: EndpointSlice
        metadata:
          name: \(name)-1
          namespace: default
          labels: {kubernetes.io/service-name: \(name)}
        addressType: IPv4
        ports: [{name: http, port: 8080, protocol: TCP}]
        endpoints:
        - addresses: [\(endpoint)]
          conditions: {ready: true}
        """
    }

    /// `strait apply` against the cluster, retried (every 250 ms, at most 60 s) while it is refused;
    /// returns how many attempts were refused first.
    @discardableResult
    func apply(_ manifest: String) throws -> Int {
        let path = "\(directory)/manifest-\(UUID().uuidString.prefix(8)).yaml"
        try manifest.write(toFile: path, atomically: true, encoding: .utf8)
        var refused = 0
        var last: CommandOutput?
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline {
            let output = try underlay.output([builtProduct("strait"), "apply", "-f", path, "--store", storeURL])
            if output.succeeded { return refused }
            refused += 1
            last = output
            usleep(250_000)
        }
        throw CommandFailure(arguments: ["strait", "apply", path], output: last, reason: "refused for 60 s")
    }

    /// The proxy's NAT rules in its node namespace.
    func natRules() throws -> String { try proxyNode.run(["iptables-save", "-t", "nat"]) }

    /// Whether the proxy's rules send `clusterIP:80` to `endpoint:8080`.
    static func routes(_ rules: String, clusterIP: String, to endpoint: String) -> Bool {
        rules.contains("-d \(clusterIP)/32") && rules.contains("--to-destination \(endpoint):8080")
    }
}

/// `ping` from one pod to another for as long as a fault lasts; stopped with SIGINT, its summary
/// says how many echoes went unanswered.
struct Pinger {
    let from: Int
    let to: Int
    let pid: pid_t
    let output: String

    /// Every 0.2 s, each echo given 1 s. Equivalent: `ip netns exec POD ping -i 0.2 -W 1 ADDRESS > FILE`.
    static func start(from: Int, to: Int, in pod: TestNamespace, address: String, directory: String) throws -> Pinger {
        let output = "\(directory)/ping-\(from)-\(to).txt"
        let pid = try Command.start(["ip", "netns", "exec", pod.name, "sh", "-c",
                                     "exec ping -i 0.2 -W 1 \(address) >\(output) 2>&1"], stdin: "")
        return Pinger(from: from, to: to, pid: pid, output: output)
    }

    /// SIGINT, then the counts from ping's summary line (transmitted, received).
    func stop() throws -> (sent: Int, received: Int) {
        kill(pid, SIGINT)
        Command.waitForExit(pid)
        let text = try String(contentsOfFile: output, encoding: .utf8)
        guard let line = text.split(separator: "\n").first(where: { $0.contains("packets transmitted") }) else {
            throw CommandFailure(arguments: ["ping"], output: nil,
                                 reason: "no summary from pod \(from) → pod \(to): \(text.suffix(300))")
        }
        let numbers = line.split(separator: " ").compactMap { Int($0) }
        return (numbers[0], numbers[1])
    }
}

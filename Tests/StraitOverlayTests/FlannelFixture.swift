import Foundation
import StraitTestSupport

/// A running flannel network as flanneld leaves it, written from flannel's documented layout
/// (Documentation/configuration.md, reservations.md; `pkg/subnet`, `pkg/backend/vxlan`): the
/// kube-flannel net-conf at `/coreos.com/network/config`, one lease per node at
/// `/coreos.com/network/subnets/<subnet>-<len>` bound to a 24 h etcd lease with flannel's
/// `LeaseAttrs` JSON (the third node's written without one: an operator's permanent reservation), `/run/flannel/subnet.env` with `FLANNEL_*` names, and on each node the
/// `flannel.1` device with its `.0/32` address and per peer a permanent neighbour, an FDB entry
/// and an on-link route.
struct FlannelFixture {
    struct Node {
        var subnet: String
        var vtepMAC: String
        var publicIP: String
        var vtep: String { String(subnet.prefix { $0 != "/" }) }
        var key: String { "/coreos.com/network/subnets/" + subnet.replacingOccurrences(of: "/", with: "-") }
        /// The value as flannel's Go `encoding/json` writes `lease.LeaseAttrs` for a vxlan node.
        var leaseValue: String {
            #"{"PublicIP":"\#(publicIP)","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"\#(vtepMAC)"}}"#
        }
        var subnetEnv: String {
            "FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=\(subnet.replacingOccurrences(of: ".0/", with: ".1/"))\n"
                + "FLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n"
        }
    }

    /// kube-flannel.yml's net-conf.json.
    static let config = #"{"Network":"10.244.0.0/16","Backend":{"Type":"vxlan"}}"#
    static let nodes = [
        Node(subnet: "10.244.17.0/24", vtepMAC: "2e:4f:9a:10:00:01", publicIP: "192.168.100.1"),
        Node(subnet: "10.244.42.0/24", vtepMAC: "5a:0c:77:20:00:02", publicIP: "192.168.100.2"),
        Node(subnet: "10.244.99.0/24", vtepMAC: "ae:61:3b:30:00:03", publicIP: "192.168.100.3"),
    ]

    /// What flanneld would have written to etcd (through etcd's JSON gateway in the underlay namespace).
    static func writeStore(_ etcd: EtcdGatewayClient) throws {
        try etcd.put("/coreos.com/network/config", config)
        for (index, node) in nodes.enumerated() {
            let lease = index == 2 ? nil : try etcd.grantLease(ttl: 86400)
            try etcd.put(node.key, node.leaseValue, lease: lease)
        }
    }

    /// What flanneld would have set up on node `index`: its subnet file and its `flannel.1` with
    /// every peer programmed.
    static func programNode(_ index: Int, in cluster: OverlayCluster) throws {
        let node = nodes[index]
        let namespace = cluster.nodes[index]
        try FileManager.default.createDirectory(atPath: (cluster.subnetFile(index) as NSString).deletingLastPathComponent,
                                                withIntermediateDirectories: true)
        try node.subnetEnv.write(toFile: cluster.subnetFile(index), atomically: true, encoding: .utf8)
        try namespace.run(["ip", "link", "add", "flannel.1", "address", node.vtepMAC, "mtu", "1450", "type", "vxlan",
                           "id", "1", "local", node.publicIP, "dev", "eth0", "dstport", "8472", "nolearning"])
        try namespace.run(["ip", "addr", "add", "\(node.vtep)/32", "dev", "flannel.1"])
        try namespace.run(["ip", "link", "set", "flannel.1", "up"])
        for (peerIndex, peer) in nodes.enumerated() where peerIndex != index {
            try namespace.run(["ip", "neigh", "replace", peer.vtep, "lladdr", peer.vtepMAC, "dev", "flannel.1", "nud", "permanent"])
            try namespace.run(["bridge", "fdb", "append", peer.vtepMAC, "dev", "flannel.1", "dst", peer.publicIP, "self", "permanent"])
            try namespace.run(["ip", "route", "replace", peer.subnet, "via", peer.vtep, "dev", "flannel.1", "onlink"])
        }
    }
}

/// etcd's v3 JSON gateway, called with curl from inside the namespace etcd listens in (keys and
/// values are base64).
struct EtcdGatewayClient {
    let namespace: TestNamespace
    let host: String

    func call(_ path: String, _ body: [String: Any]) throws -> [String: Any] {
        let json = String(decoding: try JSONSerialization.data(withJSONObject: body), as: UTF8.self)
        let output = try namespace.output(["curl", "-sf", "--max-time", "5", "-X", "POST", "http://\(host):2379/v3/\(path)", "-d", json])
        guard output.succeeded, let reply = try JSONSerialization.jsonObject(with: Data(output.stdout.utf8)) as? [String: Any] else {
            throw CommandFailure(arguments: ["curl", path], output: output, reason: "etcd \(path) failed")
        }
        return reply
    }

    func grantLease(ttl: Int) throws -> String {
        guard let id = try call("lease/grant", ["TTL": ttl])["ID"] as? String else {
            throw CommandFailure(arguments: ["lease/grant"], output: nil, reason: "no lease ID")
        }
        return id
    }

    func put(_ key: String, _ value: String, lease: String? = nil) throws {
        var body: [String: Any] = ["key": b64(key), "value": b64(value)]
        if let lease { body["lease"] = lease }
        _ = try call("kv/put", body)
    }

    /// Every key under `prefix` with its value and etcd lease ID ("0" for none).
    func list(prefix: String) throws -> [String: (value: String, lease: String)] {
        var end = Array(prefix.utf8)
        end[end.count - 1] += 1
        let reply = try call("kv/range", ["key": b64(prefix), "range_end": Data(end).base64EncodedString()])
        var result: [String: (value: String, lease: String)] = [:]
        for kv in reply["kvs"] as? [[String: Any]] ?? [] {
            guard let key = (kv["key"] as? String).flatMap({ Data(base64Encoded: $0) }),
                  let value = (kv["value"] as? String).flatMap({ Data(base64Encoded: $0) }) else { continue }
            result[String(decoding: key, as: UTF8.self)] = (String(decoding: value, as: UTF8.self), kv["lease"] as? String ?? "0")
        }
        return result
    }

    private func b64(_ text: String) -> String { Data(text.utf8).base64EncodedString() }
}

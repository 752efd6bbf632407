import Foundation
import StraitTestSupport
import Testing

/// Every bad input gets its spec (or documented) error code, and changes nothing on disk or in the kernel.
@Suite struct BadInputTests {
    /// One bad invocation: what to change, and the code it must get.
    struct Case: CustomTestStringConvertible, Sendable {
        let name: String
        let code: Int
        var command = "ADD"
        var config: [String: String] = [:]       // JSON fragments merged into the config
        var rawConfig: String? = nil
        var environment: [String: String?] = [:]
        var args: String? = nil
        var testDescription: String { "\(name) → \(code)" }
    }

    static let cases: [Case] = [
        Case(name: "unsupported cniVersion", code: 1, config: ["cniVersion": #""0.2.0""#]),
        Case(name: "GC below 1.1.0", code: 1, command: "GC", config: ["cniVersion": #""1.0.0""#]),
        Case(name: "ipam section", code: 2, config: ["ipam": #"{"type":"host-local"}"#]),
        Case(name: "unknown CNI_ARGS key", code: 2, args: "FOO=bar"),
        Case(name: "CHECK of an unknown container", code: 3, command: "CHECK", config: ["prevResult": #"{"cniVersion":"1.1.0"}"#]),
        Case(name: "missing CNI_COMMAND", code: 4, environment: ["CNI_COMMAND": nil]),
        Case(name: "unknown CNI_COMMAND", code: 4, environment: ["CNI_COMMAND": "ATTACH"]),
        Case(name: "container ID with a slash", code: 4, environment: ["CNI_CONTAINERID": "../etc"]),
        Case(name: "interface name too long", code: 4, environment: ["CNI_IFNAME": "a-very-long-ifname"]),
        Case(name: "missing CNI_NETNS", code: 4, environment: ["CNI_NETNS": nil]),
        Case(name: "CNI_NETNS that does not exist", code: 4, environment: ["CNI_NETNS": "/run/netns/strait-no-such-ns"]),
        Case(name: "unwritable dataDir", code: 5, config: ["dataDir": #""/proc/strait-ipam""#]),
        Case(name: "stdin not JSON", code: 6, rawConfig: "{ not json"),
        Case(name: "missing name", code: 7, rawConfig: #"{"cniVersion":"1.1.0","type":"strait-cni","subnet":"10.250.1.0/24"}"#),
        Case(name: "mtu out of range", code: 7, config: ["mtu": "10"]),
        Case(name: "subnet with prefix 33", code: 7, config: ["subnet": #""10.250.1.0/33""#]),
        Case(name: "subnet too small", code: 7, config: ["subnet": #""10.250.1.0/31""#]),
        Case(name: "hostPort out of range", code: 7, config: ["runtimeConfig": #"{"portMappings":[{"hostPort":70000,"containerPort":80}]}"#]),
        Case(name: "mtu of the wrong type", code: 7, config: ["mtu": #""big""#]),
        Case(name: "subnet file not written yet", code: 11, config: ["subnet": "null", "subnetFile": #""/run/strait/no-such-subnet.env""#]),
        Case(name: "static address outside the subnet", code: 102, args: "IP=10.9.9.9"),
        Case(name: "static address that is the gateway", code: 102, args: "IP=10.250.1.1"),
    ]

    @Test(arguments: cases)
    func badInputGetsItsCodeAndChangesNothing(_ bad: Case) async throws {
        try await withTestNamespaces(3) { namespaces in
            let (node, existing, pod) = (namespaces[0], namespaces[1], namespaces[2])
            let cni = CNIHarness(node: node)
            defer { cni.removeDataDir() }
            try cni.add("existing", pod: existing)  // a node already in use
            let disk = cni.diskState(), kernel = try cni.kernelState()

            let reply = try cni.invoke(bad.command, containerID: "bad", pod: pod, args: bad.args,
                                       config: bad.rawConfig ?? merged(cni.config(), bad.config), environment: bad.environment)
            #expect(reply.status != 0)
            #expect(reply.code == bad.code, "\(reply.stdout)")
            #expect(!(reply.json["msg"] as? String ?? "").isEmpty)
            #expect(cni.diskState() == disk)
            #expect(try cni.kernelState() == kernel)
        }
    }

    @Test func aRefusedLeaseOnAFreshNodeLeavesNoBridgeAndNoSysctl() async throws {
        try await withTestNamespaces(2) { namespaces in
            let cni = CNIHarness(node: namespaces[0])
            defer { cni.removeDataDir() }
            let kernel = try cni.kernelState()
            let forwarding = try namespaces[0].run(["cat", "/proc/sys/net/ipv4/ip_forward"])
            let reply = try cni.invoke("ADD", containerID: "fresh", pod: namespaces[1], args: "IP=10.250.1.1")
            #expect(reply.code == 102)
            #expect(try cni.kernelState() == kernel)
            #expect(try namespaces[0].run(["cat", "/proc/sys/net/ipv4/ip_forward"]) == forwarding)
            #expect(!(try namespaces[1].run(["ip", "-o", "link"]).contains("eth0")))
        }
    }

    @Test func secondAddOfAnExistingInterfaceIs101AndChangesNothing() async throws {
        try await withTestNamespaces(2) { namespaces in
            let cni = CNIHarness(node: namespaces[0])
            defer { cni.removeDataDir() }
            try cni.add("first", pod: namespaces[1])
            let disk = cni.diskState(), kernel = try cni.kernelState()
            let reply = try cni.invoke("ADD", containerID: "second", pod: namespaces[1])
            #expect(reply.code == 101)
            #expect(cni.diskState() == disk)
            #expect(try cni.kernelState() == kernel)
        }
    }

    @Test func addToAFullPoolIs100AndChangesNothing() async throws {
        try await withTestNamespaces(3) { namespaces in
            var cni = CNIHarness(node: namespaces[0])
            defer { cni.removeDataDir() }
            cni.subnet = "10.250.9.0/30"
            try cni.add("only", pod: namespaces[1])
            let disk = cni.diskState(), kernel = try cni.kernelState()
            let reply = try cni.invoke("ADD", containerID: "one-too-many", pod: namespaces[2])
            #expect(reply.code == 100)
            #expect(cni.diskState() == disk)
            #expect(try cni.kernelState() == kernel)
        }
    }

    /// The config with some keys replaced by raw JSON fragments.
    private func merged(_ config: String, _ fragments: [String: String]) throws -> String {
        var object = try JSONSerialization.jsonObject(with: Data(config.utf8)) as! [String: Any]
        for (key, fragment) in fragments {
            let value = try JSONSerialization.jsonObject(with: Data(fragment.utf8), options: .fragmentsAllowed)
            if value is NSNull { object.removeValue(forKey: key) } else { object[key] = value }
        }
        return String(decoding: try JSONSerialization.data(withJSONObject: object), as: UTF8.self)
    }
}

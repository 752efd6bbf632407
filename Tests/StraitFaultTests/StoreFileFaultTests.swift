import Foundation
import StraitTestSupport
import Testing

/// The SQLite store file damaged (emptied, truncated, overwritten): `strait get`, `strait proxy
/// --store` and `strait overlay --store` each stop with an error naming the file and a non-zero
/// exit, and leave the file byte for byte as it was (SQLite would take an empty file for a new
/// store, and a restart loop must not "repair" the operator's data away).
@Suite(.serialized) struct StoreFileFaultTests {
    static let suite = "StoreFileFaultTests"

    static let manifest = """
        apiVersion: v1
        kind: Service
        metadata: {name: web, namespace: default}
        spec:
          clusterIP: 10.96.0.10
          ports: [{name: http, port: 80, targetPort: 8080, protocol: TCP}]
        """

    /// Each damage, applied to a copy of a good store file.
    static let damages: [(name: String, damage: @Sendable (Data) -> Data)] = [
        ("emptied", { _ in Data() }),
        ("cut to its first page", { $0.prefix(4096) }),
        ("cut mid-page", { $0.prefix($0.count - 1000) }),
        ("header overwritten", { Data(repeating: 0x5a, count: 100) + $0.dropFirst(100) }),
        ("pages after the first overwritten", { $0.prefix(4096) + Data(repeating: 0xa5, count: $0.count - 4096) }),
    ]

    @Test func damagedStoreIsRefusedAndLeftAlone() async throws {
        try await withTestNamespaces(2) { namespaces in
            let node = namespaces[0]
            // An underlay for the overlay agent to find before it opens the store.
            try node.connect(to: namespaces[1], localName: "d0", remoteName: "eth0")
            try node.run(["ip", "addr", "add", "192.168.77.1/24", "dev", "d0"])
            let directory = NSTemporaryDirectory() + "strait-fault-store-\(getpid())-\(node.name)"
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let strait = builtProduct("strait")
            let good = directory + "/good.db"
            try Self.manifest.write(toFile: directory + "/web.yaml", atomically: true, encoding: .utf8)
            try Command.run([strait, "apply", "-f", directory + "/web.yaml", "--store", good])
            let goodBytes = try #require(FileManager.default.contents(atPath: good))
            #expect(goodBytes.count >= 3 * 4096, "a store of several pages: \(goodBytes.count) bytes")

            // Each command, bounded: one that kept running (or restarting) would be a failure too.
            let commands: [(name: String, arguments: (String) -> [String])] = [
                ("strait get", { ["timeout", "60", strait, "get", "services", "--store", $0] }),
                ("strait proxy", { ["timeout", "60", "ip", "netns", "exec", node.name, strait, "proxy", "--store", $0,
                                    "--hostname-override", "node", "--conntrack-max-per-core=0",
                                    "--metrics-bind-address", "127.0.0.1:10249",
                                    "--healthz-bind-address", "127.0.0.1:10256"] }),
                ("strait overlay", { ["timeout", "60", "ip", "netns", "exec", node.name, strait, "overlay",
                                      "--store", $0, "--iface", "d0", "--healthz-port", "0",
                                      "--subnet-file", directory + "/subnet.env",
                                      "--cluster-cidr", "10.244.0.0/16"] }),
            ]
            var refused = 0, runs = 0
            for (index, (name, damage)) in Self.damages.enumerated() {
                let path = directory + "/damaged-\(index).db"
                let bytes = damage(goodBytes)
                try bytes.write(to: URL(fileURLWithPath: path))
                for (command, arguments) in commands {
                    runs += 1
                    let output = try Command.output(arguments(path))
                    let untouched = FileManager.default.contents(atPath: path) == bytes
                    #expect(!output.succeeded && output.status != 124,
                            "\(command), store \(name): exited \(output.status)")
                    #expect(output.stderr.contains(path), "\(command), store \(name): \(output.stderr)")
                    #expect(untouched, "\(command) left the store \(name) as it was")
                    if !output.succeeded && output.status != 124 && output.stderr.contains(path) && untouched {
                        refused += 1
                    }
                }
            }
            // The good file still opens: the checks refuse damage, not stores.
            let listed = try Command.run([strait, "get", "services", "--store", good])
            #expect(listed.contains("web"), "\(listed)")
            reportFigure(suite: Self.suite, "damaged store files refused by name and left byte for byte",
                         "\(refused)/\(runs) (\(Self.damages.count) damages x \(commands.count) commands)")
        }
    }
}

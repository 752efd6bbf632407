import Foundation
import StraitTestSupport
import Testing

/// `strait apply/get/delete` run as built, against a temporary SQLite store.
@Suite struct ObjectCommandTests {
    let strait = builtProduct("strait")

    static let web = """
        apiVersion: v1
        kind: Service
        metadata:
          name: web
        spec:
          clusterIP: 10.96.0.10
          ports:
          - name: http
            port: 80
            targetPort: 8080
        ---
        apiVersion: discovery.k8s.io/v1
        kind: EndpointSlice
        metadata:
          name: web-1
          labels:
            kubernetes.io/service-name: web
        addressType: IPv4
        endpoints:
        - addresses: ["10.244.1.5"]
        ports:
        - name: http
          port: 8080
        """

    func run(_ arguments: [String], store: String, stdin: String? = nil) throws -> CommandOutput {
        try Command.output([strait] + arguments + ["--store", store], stdin: stdin)
    }

    @Test func applyGetDelete() async throws {
        try await withTemporaryDirectory { dir in
            let store = "\(dir)/store.db"
            let file = "\(dir)/web.yaml"
            try Self.web.write(toFile: file, atomically: true, encoding: .utf8)

            let applied = try run(["apply", "-f", file], store: store)
            #expect(applied.status == 0, "\(applied.stderr)")
            #expect(applied.stdout == "service/web created\nendpointslice.discovery.k8s.io/web-1 created\n")
            let again = try run(["apply", "-f", "-"], store: store, stdin: Self.web)
            #expect(again.stdout == "service/web unchanged\nendpointslice.discovery.k8s.io/web-1 unchanged\n")
            let changed = try run(["apply", "-f", "-"], store: store,
                                  stdin: Self.web.replacingOccurrences(of: "10.244.1.5", with: "10.244.1.6"))
            #expect(changed.stdout == "service/web unchanged\nendpointslice.discovery.k8s.io/web-1 configured\n")

            let table = try run(["get", "services"], store: store)
            #expect(table.status == 0)
            let lines = table.stdout.split(separator: "\n")
            #expect(lines.count == 2)
            #expect(lines[0].hasPrefix("NAME") && lines[0].contains("CLUSTER-IP") && lines[0].contains("PORT(S)"))
            #expect(lines[1].hasPrefix("web ") && lines[1].contains("10.96.0.10") && lines[1].contains("80/TCP"))
            let slices = try run(["get", "endpointslices"], store: store)
            #expect(slices.stdout.contains("web-1") && slices.stdout.contains("10.244.1.6"))

            let json = try run(["get", "services", "-o", "json"], store: store)
            let object = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
            #expect(object["kind"] as? String == "Service")
            let yaml = try run(["get", "endpointslices", "-o", "yaml"], store: store)
            #expect(yaml.stdout.contains("kind: EndpointSlice") && yaml.stdout.contains("10.244.1.6"))
            #expect(try run(["get", "services", "-n", "other"], store: store).stdout.isEmpty)

            let deleted = try run(["delete", "service", "web", "-n", "default"], store: store)
            #expect(deleted.status == 0 && deleted.stdout == "service \"web\" deleted\n")
            let missing = try run(["delete", "service", "web"], store: store)
            #expect(missing.status == 1 && missing.stderr.contains("not found"))
            #expect(try run(["delete", "endpointslice", "web-1"], store: store).status == 0)
            #expect(try run(["get", "services", "-o", "json"], store: store).stdout.contains("\"items\" : ["))
        }
    }

    @Test func storeFromEnvironmentVariable() async throws {
        try await withTemporaryDirectory { dir in
            let store = "\(dir)/env.db"
            let output = try Command.output(["env", "STRAIT_STORE=\(store)", strait, "apply", "-f", "-"], stdin: Self.web)
            #expect(output.status == 0, "\(output.stderr)")
            #expect(FileManager.default.fileExists(atPath: store))
        }
    }

    /// Each bad object is refused with the object and field named, and nothing is written, not
    /// even the good objects beside it.
    @Test(arguments: [
        ("clusterIP: 10.96.0.10", "clusterIP: 10.96.0.300", "Service default/web: spec.clusterIP"),
        ("    port: 80\n", "    port: 70000\n", "Service default/web: spec.ports[0].port"),
        ("  - name: http\n    port: 80", "  - name: http\n    protocol: ICMP\n    port: 80", "Service default/web: spec.ports[0].protocol"),
        ("addresses: [\"10.244.1.5\"]", "addresses: [\"10.244.1.500\"]", "EndpointSlice default/web-1: endpoints[0].addresses[0]"),
        ("kubernetes.io/service-name: web", "kubernetes.io/service-name: nosuch", "EndpointSlice default/web-1: metadata.labels"),
        ("kind: Service\n", "kind: Pod\n", "Pod"),
    ])
    func badObjectsRefused(find: String, replace: String, expected: String) async throws {
        try await withTemporaryDirectory { dir in
            let store = "\(dir)/store.db"
            let bad = Self.web.replacingOccurrences(of: find, with: replace)
            #expect(bad != Self.web)
            let output = try run(["apply", "-f", "-"], store: store, stdin: bad)
            #expect(output.status != 0)
            #expect(output.stderr.contains(expected), "\(output.stderr)")
            #expect(output.stdout.isEmpty)
            let services = try run(["get", "services", "-o", "json"], store: store)
            let slices = try run(["get", "endpointslices", "-o", "json"], store: store)
            #expect(!services.stdout.contains("\"name\" : \"web\""))
            #expect(!slices.stdout.contains("web-1"))
        }
    }

    @Test func sliceForAServiceAlreadyInTheStore() async throws {
        try await withTemporaryDirectory { dir in
            let store = "\(dir)/store.db"
            let parts = Self.web.components(separatedBy: "---\n")
            #expect(try run(["apply", "-f", "-"], store: store, stdin: parts[0]).status == 0)
            let slice = try run(["apply", "-f", "-"], store: store, stdin: parts[1])
            #expect(slice.status == 0 && slice.stdout == "endpointslice.discovery.k8s.io/web-1 created\n")
        }
    }
}

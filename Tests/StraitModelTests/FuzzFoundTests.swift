import Foundation
import StraitManifest
import StraitModel
import Testing

/// What the fuzz targets found (scripts/fuzz), each as a plain test; the raw inputs are replayed by
/// StraitFaultTests' FuzzReplayTests from Tests/Fuzz/regressions/.
@Suite struct FuzzFoundTests {
    /// fuzz-manifest: a namespace was never checked, so `pr/d` (or one with a quote or a newline)
    /// passed `strait apply` and reached store keys and the proxy's iptables-restore comments.
    @Test(arguments: ["pr/d", "a\"b", "x;touch /tmp/pwned", "Prod", "a\nb", "-x", String(repeating: "a", count: 64)])
    func namespaceMustBeADNSLabel(namespace: String) throws {
        let yaml = """
            {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": \(jsonString(namespace))},
             "spec": {"ports": [{"port": 80}]}}
            """
        let object = try #require(try Manifest.decode(yaml).first)
        let errors = object.validationErrors()
        #expect(errors.map(\.field) == ["metadata.namespace"], "\(errors)")
        let slice = """
            {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "addressType": "IPv4",
             "metadata": {"name": "web-1", "namespace": \(jsonString(namespace))}}
            """
        #expect(try #require(try Manifest.decode(slice).first).validationErrors().map(\.field) == ["metadata.namespace"])
    }

    @Test func emptyOrUnsetNamespaceMeansDefault() throws {
        for metadata in [#"{"name": "web"}"#, #"{"name": "web", "namespace": ""}"#, #"{"name": "web", "namespace": "kube-system"}"#] {
            let yaml = #"{"apiVersion": "v1", "kind": "Service", "metadata": \#(metadata), "spec": {"ports": [{"port": 80}]}}"#
            #expect(try #require(try Manifest.decode(yaml).first).validationErrors() == [])
        }
    }

    private func jsonString(_ text: String) -> String {
        String(decoding: try! JSONEncoder().encode(text), as: UTF8.self)
    }
}

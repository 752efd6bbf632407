import Foundation
import StraitManifest
import StraitModel
import Testing

@Suite struct ManifestTests {
    @Test func unknownKindNamesTheKindAndDocument() {
        let yaml = """
            apiVersion: v1
            kind: Service
            metadata: {name: a}
            ---
            apiVersion: v1
            kind: Pod
            metadata: {name: p, namespace: x}
            """
        #expect(throws: ManifestError(document: 1, object: "Pod x/p",
            message: "unsupported kind v1 Pod; Strait reads v1 Service, discovery.k8s.io/v1 EndpointSlice, v1 Node")) {
            try Manifest.decode(yaml)
        }
    }

    @Test func wrongAPIVersionIsRefused() throws {
        let yaml = "apiVersion: discovery.k8s.io/v1beta1\nkind: EndpointSlice\nmetadata: {name: s}\naddressType: IPv4\n"
        let error = try #require(throws: ManifestError.self) { try Manifest.decode(yaml) }
        #expect(error.document == 0)
        #expect(error.object == "EndpointSlice default/s")
        #expect(error.message.contains("apiVersion"))
        #expect(error.message.contains("discovery.k8s.io/v1"))
    }

    @Test(arguments: [
        ("spec: {ports: [{port: eighty}]}", "spec.ports[0].port: expected a number"),
        ("spec: {ports: [{name: x}]}", "spec.ports[0].port: is required"),
        ("spec: {selector: [a]}", "spec.selector: expected a mapping"),
        ("spec: {clusterIPs: 10.0.0.1}", "spec.clusterIPs: expected a list"),
    ])
    func typeErrorsNameDocumentObjectAndField(spec: String, message: String) throws {
        let yaml = "kind: Node\napiVersion: v1\nmetadata: {name: n}\n---\napiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: shop}\n\(spec)\n"
        let error = try #require(throws: ManifestError.self) { try Manifest.decode(yaml) }
        #expect(error.document == 1)
        #expect(error.object == "Service shop/web")
        #expect(error.message == message)
        #expect(error.description == "document 1 (Service shop/web): \(message)")
    }

    @Test func listItemErrorsNameTheItem() throws {
        let json = #"{"kind": "ServiceList", "apiVersion": "v1", "items": [{"metadata": {"name": "a"}, "spec": {}}, {"metadata": {"name": "b"}, "spec": {"ports": [{"port": "x"}]}}]}"#
        let error = try #require(throws: ManifestError.self) { try Manifest.decode(json) }
        #expect(error.object == "Service default/b")
        #expect(error.message == "items[1].spec.ports[0].port: expected a number")
    }

    @Test func missingKindAndNonObjects() throws {
        #expect(throws: ManifestError(document: 0, object: "object default/x", message: "has no kind")) {
            try Manifest.decode("metadata: {name: x}")
        }
        #expect(throws: ManifestError(document: 0, message: "expected an object (a mapping), found a sequence")) {
            try Manifest.decode("- a\n- b")
        }
        let error = try #require(throws: ManifestError.self) { try Manifest.decode("kind: [unclosed") }
        #expect(error.message.hasPrefix("not YAML or JSON"))
    }

    @Test func emptyDocumentsAndEmptyInput() throws {
        #expect(try Manifest.decode("") == [])
        #expect(try Manifest.decode("---\n---\n# only a comment\n") == [])
        #expect(try Manifest.decode(#"{"kind": "List", "apiVersion": "v1", "items": []}"#) == [])
    }

    @Test func unknownFieldsAreIgnored() throws {
        let yaml = """
            apiVersion: v1
            kind: Service
            futureTopLevel: {x: 1}
            metadata: {name: web, namespace: default, managedFields: [{manager: kubectl}], newMeta: 3}
            spec:
              futureField: [1, 2, 3]
              ports: [{port: 80, futureport: yes}]
            status: {conditions: [{type: Ready}], loadBalancer: {ingress: [{ip: 1.2.3.4, ports: [{port: 80, protocol: TCP}]}]}}
            """
        let objects = try Manifest.decode(yaml)
        guard case .service(let service)? = objects.first else { Issue.record("not a service"); return }
        #expect(service.ports == [ServicePort(port: 80)])
        #expect(service.loadBalancerIngressAddresses.map(\.description) == ["1.2.3.4"])
        let json = String(decoding: try Manifest.json(objects), as: UTF8.self)
        #expect(!json.contains("future"))
        #expect(!json.contains("managedFields"))
    }

    @Test func jsonOutputShapes() throws {
        let objects = try Fixture.objects("list-kubectl.json")
        let list = try #require(try JSONSerialization.jsonObject(with: Manifest.json(objects)) as? [String: Any])
        #expect(list["kind"] as? String == "List")
        #expect(list["apiVersion"] as? String == "v1")
        #expect((list["items"] as? [Any])?.count == 2)
        let one = try #require(try JSONSerialization.jsonObject(with: Manifest.json([objects[0]])) as? [String: Any])
        #expect(one["kind"] as? String == "Service")
        #expect(one["apiVersion"] as? String == "v1")
        let slice = try #require(try JSONSerialization.jsonObject(with: Manifest.json([objects[1]])) as? [String: Any])
        #expect(slice["apiVersion"] as? String == "discovery.k8s.io/v1")
        #expect(slice["addressType"] as? String == "IPv4")
    }

    @Test func yamlOutputIsAStream() throws {
        let objects = try Fixture.objects("list-kubectl.json")
        let yaml = try Manifest.yaml(objects)
        #expect(yaml.hasPrefix("apiVersion: v1\nkind: Service\n"))
        #expect(yaml.contains("---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n"))
        #expect(try Manifest.decode(yaml) == objects)
    }

    @Test func dataInput() throws {
        let data = Data(try Fixture.text("service-clusterip.json").utf8)
        #expect(try Manifest.decode(data).map(\.reference) == ["Service default/web"])
        #expect(throws: ManifestError(document: 0, message: "not UTF-8 text")) {
            try Manifest.decode(Data([0xff, 0xfe, 0x00]))
        }
    }

    @Test func targetPortAcceptsNumberOrName() throws {
        let yaml = "apiVersion: v1\nkind: Service\nmetadata: {name: a}\nspec: {ports: [{name: a, port: 1, targetPort: 80}, {name: b, port: 2, targetPort: web}]}"
        guard case .service(let service)? = try Manifest.decode(yaml).first else { Issue.record("no service"); return }
        #expect(service.ports.map(\.targetPort) == [.int(80), .string("web")])
        let json = String(decoding: try JSONEncoder().encode(service.ports.map(\.targetPort)), as: UTF8.self)
        #expect(json == #"[80,"web"]"#)
    }
}

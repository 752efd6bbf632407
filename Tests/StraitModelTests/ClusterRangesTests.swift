import StraitManifest
import StraitModel
import Testing

/// `ClusterRanges`: what `strait apply` refuses as the API server would under
/// `--service-cluster-ip-range` and `--service-node-port-range`, each problem naming the field.
@Suite struct ClusterRangesTests {
    static let ranges = ClusterRanges(serviceCIDRs: [IPCIDR("10.96.0.0/12")!, IPCIDR("fd00:10:96::/112")!])

    static func object(_ yaml: String) throws -> KubeObject {
        try #require(try Manifest.decode(yaml).first)
    }

    static func service(_ spec: String) throws -> KubeObject {
        try object("apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec:\n" + spec)
    }

    static func fields(_ problems: [ModelError]) -> [String] { problems.map(\.field) }

    @Test func addressesAndPortsInsideTheRangesPass() throws {
        let object = try Self.service("""
              type: NodePort
              clusterIP: 10.96.0.20
              clusterIPs: [10.96.0.20, "fd00:10:96::20"]
              healthCheckNodePort: 32767
              externalIPs: [192.0.2.1]
              ports: [{name: http, port: 80, nodePort: 30000}]
            """)
        #expect(Self.ranges.problems(object) == [])
        #expect(object.validationErrors() == [])
    }

    @Test func clusterIPOutsideTheServiceRangeIsRefusedNamingTheField() throws {
        let object = try Self.service("  clusterIP: 10.0.0.10\n  clusterIPs: [10.0.0.10, \"fd00:99::1\"]\n")
        let problems = Self.ranges.problems(object)
        #expect(Self.fields(problems) == ["spec.clusterIP", "spec.clusterIPs[0]", "spec.clusterIPs[1]"])
        #expect(problems[0].description
            == "Service default/web: spec.clusterIP: 10.0.0.10 is not in the service range 10.96.0.0/12 (--service-cluster-ip-range)")
        #expect(problems[2].problem.contains("fd00:10:96::/112"))
    }

    @Test func aFamilyWithoutARangeIsRefused() throws {
        let v4only = ClusterRanges(serviceCIDRs: [IPCIDR("10.96.0.0/12")!])
        let problems = v4only.problems(try Self.service("  clusterIPs: [10.96.0.1, \"fd00::1\"]\n"))
        #expect(Self.fields(problems) == ["spec.clusterIPs[1]"])
        #expect(problems.first?.problem.contains("no IPv6 service range is configured") == true)
    }

    @Test func withoutServiceRangesClusterIPsAreNotRangeChecked() throws {
        #expect(ClusterRanges().problems(try Self.service("  clusterIP: 192.0.2.7\n")) == [])
    }

    @Test func headlessAndUnsetClusterIPsPass() throws {
        #expect(Self.ranges.problems(try Self.service("  clusterIP: None\n")) == [])
        #expect(Self.ranges.problems(try Self.service("  clusterIP: \"\"\n")) == [])
    }

    @Test func nodePortsOutsideTheRangeAreRefused() throws {
        let object = try Self.service("""
              type: LoadBalancer
              healthCheckNodePort: 10256
              ports: [{name: a, port: 80, nodePort: 29999}, {name: b, port: 81, nodePort: 32768}, {name: c, port: 82, nodePort: 31000}]
            """)
        let problems = Self.ranges.problems(object)
        #expect(Self.fields(problems) == ["spec.ports[0].nodePort", "spec.ports[1].nodePort", "spec.healthCheckNodePort"])
        #expect(problems[0].problem == "29999 is not in the node port range 30000-32767 (--service-node-port-range)")
        let wide = ClusterRanges(nodePorts: 1000...40000)
        #expect(Self.fields(wide.problems(object)) == [], "inside a wider range every port is accepted")
    }

    @Test func nodePortOnAClusterIPServiceIsRefused() throws {
        let problems = Self.ranges.problems(try Self.service("  ports: [{port: 80, nodePort: 30080}]\n"))
        #expect(problems.map(\.description) == ["Service default/web: spec.ports[0].nodePort: may not be used when spec.type is ClusterIP"])
    }

    @Test func specialExternalIPsAndEndpointsAreRefused() throws {
        let service = try Self.service("  externalIPs: [127.0.0.1, 169.254.169.254, 0.0.0.0, \"::1\", \"fe80::1\", 224.0.0.5, 192.0.2.1]\n")
        let problems = ClusterRanges().problems(service)
        #expect(Self.fields(problems) == (0..<6).map { "spec.externalIPs[\($0)]" })
        #expect(problems[1].problem == "169.254.169.254 may not be in the link-local range (169.254.0.0/16)")
        let slice = try Self.object("""
            apiVersion: discovery.k8s.io/v1
            kind: EndpointSlice
            metadata: {name: web-1, labels: {kubernetes.io/service-name: web}}
            addressType: IPv4
            endpoints: [{addresses: [10.244.1.5]}, {addresses: [127.0.0.1]}]
            """)
        #expect(ClusterRanges().problems(slice).map(\.description)
            == ["EndpointSlice default/web-1: endpoints[1].addresses[0]: 127.0.0.1 may not be in the loopback range (127.0.0.0/8)"])
    }

    @Test func flagValuesAreParsedOrRefusedNamingTheFlag() throws {
        let parsed = try ClusterRanges(serviceCIDRs: "10.96.0.0/12, fd00:10:96::/112", nodePorts: "20000-22767")
        #expect(parsed == ClusterRanges(serviceCIDRs: [IPCIDR("10.96.0.0/12")!, IPCIDR("fd00:10:96::/112")!],
                                        nodePorts: 20000...22767))
        #expect(try ClusterRanges(serviceCIDRs: nil, nodePorts: nil) == ClusterRanges())
        for (cidrs, ports, flag) in [("10.96.0.1/12", nil, "--service-cluster-ip-range"),
                                     ("10.96.0.0/12,10.100.0.0/16", nil, "--service-cluster-ip-range"),
                                     (nil, "32767-30000", "--service-node-port-range"),
                                     (nil, "30000", "--service-node-port-range"),
                                     (nil, "0-100", "--service-node-port-range")] as [(String?, String?, String)] {
            let error = try #require(throws: ClusterRanges.RangeError.self) {
                try ClusterRanges(serviceCIDRs: cidrs, nodePorts: ports)
            }
            #expect(error.description.hasPrefix(flag + ":"), "\(error)")
        }
    }
}

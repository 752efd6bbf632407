import StraitManifest
import StraitModel
import Testing

@Suite struct ValidationTests {
    /// A valid Service in YAML; each case replaces one line and expects one error.
    static let serviceYAML = """
        apiVersion: v1
        kind: Service
        metadata:
          name: web
          namespace: default
        spec:
          type: ClusterIP
          clusterIP: 10.96.0.20
          clusterIPs: [10.96.0.20]
          ipFamilies: [IPv4]
          ipFamilyPolicy: SingleStack
          sessionAffinity: ClientIP
          sessionAffinityConfig: {clientIP: {timeoutSeconds: 300}}
          externalTrafficPolicy: Cluster
          internalTrafficPolicy: Cluster
          externalIPs: [192.0.2.1]
          loadBalancerSourceRanges: [10.0.0.0/8]
          healthCheckNodePort: 30999
          ports:
          - {name: http, port: 80, protocol: TCP, targetPort: 8080, nodePort: 30080}
          - {name: https, port: 443, protocol: TCP, targetPort: https}
        status:
          loadBalancer: {ingress: [{ip: 203.0.113.1}]}
        """

    static func service(replacing old: String, with new: String) throws -> KubeObject {
        precondition(serviceYAML.contains(old), "fixture has no \(old)")
        let objects = try Manifest.decode(serviceYAML.replacingOccurrences(of: old, with: new))
        return try #require(objects.first)
    }

    @Test func baseServiceIsValid() throws {
        let object = try Self.service(replacing: "name: web", with: "name: web")
        #expect(object.validationErrors() == [])
        try object.validate()
    }

    @Test(arguments: [
        ("port: 80,", "port: 70000,", "spec.ports[0].port: 70000 is not a valid port (1-65535)"),
        ("port: 80,", "port: 0,", "spec.ports[0].port: 0 is not a valid port (1-65535)"),
        ("clusterIP: 10.96.0.20\n  clusterIPs: [10.96.0.20]", "clusterIP: 10.0.0.256",
         #"spec.clusterIP: "10.0.0.256" is not an IP address: octet 256 is out of range (0-255)"#),
        ("clusterIPs: [10.96.0.20]", "clusterIPs: [10.96.0.20, '::ffff:1.2.3.4']",
         #"spec.clusterIPs[1]: "::ffff:1.2.3.4" is not an IP address: IPv4-mapped IPv6 addresses are not allowed; use the plain IPv4 address"#),
        ("clusterIPs: [10.96.0.20]", "clusterIPs: [10.96.0.21]",
         #"spec.clusterIPs[0]: "10.96.0.21" must equal spec.clusterIP "10.96.0.20""#),
        ("protocol: TCP, targetPort: 8080", "protocol: ICMP, targetPort: 8080",
         #"spec.ports[0].protocol: "ICMP" is not a supported protocol (TCP, UDP, SCTP)"#),
        ("type: ClusterIP", "type: Magic",
         #"spec.type: "Magic" is not a supported service type (ClusterIP, NodePort, LoadBalancer, ExternalName)"#),
        ("targetPort: 8080", "targetPort: 65536", "spec.ports[0].targetPort: 65536 is not a valid port (1-65535)"),
        ("targetPort: https", "targetPort: HTTPS_port",
         #"spec.ports[1].targetPort: "HTTPS_port" is not a valid port name (at most 15 lowercase letters, digits and '-', with a letter)"#),
        ("nodePort: 30080", "nodePort: 99999", "spec.ports[0].nodePort: 99999 is not a valid port (1-65535)"),
        ("name: https,", "name: http,", #"spec.ports[1].name: "http" is duplicated"#),
        ("name: https,", "", "spec.ports[1].name: is required when there is more than one port"),
        ("port: 443,", "port: 80,", "spec.ports[1]: port 80/TCP is duplicated"),
        ("name: https,", "name: Https,", #"spec.ports[1].name: "Https" is not a DNS-1123 label (lowercase letters, digits and '-')"#),
        ("ipFamilies: [IPv4]", "ipFamilies: [IPv5]", #"spec.ipFamilies[0]: "IPv5" is not a supported IP family (IPv4, IPv6)"#),
        ("ipFamilyPolicy: SingleStack", "ipFamilyPolicy: Both",
         #"spec.ipFamilyPolicy: "Both" is not a supported IP family policy (SingleStack, PreferDualStack, RequireDualStack)"#),
        ("sessionAffinity: ClientIP", "sessionAffinity: Cookie",
         #"spec.sessionAffinity: "Cookie" is not a supported session affinity (None, ClientIP)"#),
        ("timeoutSeconds: 300", "timeoutSeconds: 86401",
         "spec.sessionAffinityConfig.clientIP.timeoutSeconds: 86401 is out of range (1-86400)"),
        ("externalTrafficPolicy: Cluster", "externalTrafficPolicy: Global",
         #"spec.externalTrafficPolicy: "Global" is not a supported traffic policy (Cluster, Local)"#),
        ("internalTrafficPolicy: Cluster", "internalTrafficPolicy: local",
         #"spec.internalTrafficPolicy: "local" is not a supported traffic policy (Cluster, Local)"#),
        ("healthCheckNodePort: 30999", "healthCheckNodePort: -1", "spec.healthCheckNodePort: -1 is not a valid port (1-65535)"),
        ("externalIPs: [192.0.2.1]", "externalIPs: [192.0.2.1, example.com]",
         #"spec.externalIPs[1]: "example.com" is not an IP address: unexpected character "e""#),
        ("loadBalancerSourceRanges: [10.0.0.0/8]", "loadBalancerSourceRanges: [10.0.0.0/33]",
         #"spec.loadBalancerSourceRanges[0]: "10.0.0.0/33" is not a CIDR: prefix length 33 is out of range (0-32)"#),
        ("{ip: 203.0.113.1}", "{ip: 203.0.113}",
         #"status.loadBalancer.ingress[0].ip: "203.0.113" is not an IP address: expected 4 dot-separated octets, found 3"#),
        ("name: web", "name: Web", #"metadata.name: "Web" is not a DNS-1035 label (lowercase letters, digits and '-', starting with a letter)"#),
        ("name: web", "name: 1web", #"metadata.name: "1web" is not a DNS-1035 label (lowercase letters, digits and '-', starting with a letter)"#),
        ("  name: web\n", "", "metadata.name: is required"),
    ])
    func serviceProblems(old: String, new: String, expected: String) throws {
        let object = try Self.service(replacing: old, with: new)
        let errors = object.validationErrors()
        #expect(errors.map(\.description) == ["\(object.reference): \(expected)"])
        let first = try #require(errors.first)
        #expect(throws: first) { try object.validate() }
    }

    @Test(arguments: ["", "None"])
    func headlessAndUnsetClusterIPAreValid(value: String) throws {
        let object = try Self.service(replacing: "clusterIP: 10.96.0.20\n  clusterIPs: [10.96.0.20]",
                                      with: "clusterIP: '\(value)'")
        #expect(object.validationErrors() == [])
    }

    @Test func errorNamesObjectAndField() throws {
        let object = try Self.service(replacing: "port: 80,", with: "port: 70000,")
        let error = try #require(object.validationErrors().first)
        #expect(error.object == "Service default/web")
        #expect(error.field == "spec.ports[0].port")
        #expect(error.description == "Service default/web: spec.ports[0].port: 70000 is not a valid port (1-65535)")
    }

    @Test func everyProblemIsReported() throws {
        let object = try Self.service(replacing: "port: 80, protocol: TCP", with: "port: 0, protocol: ICMP")
        #expect(object.validationErrors().map(\.field) == ["spec.ports[0].port", "spec.ports[0].protocol"])
    }

    @Test func externalNameNeedsAName() {
        let service = Service(metadata: ObjectMeta(name: "ext", namespace: "a"), spec: ServiceSpec(type: .externalName))
        #expect(service.validationErrors().map(\.description)
            == ["Service a/ext: spec.externalName: is required for type ExternalName"])
    }

    @Test func unknownEnumValuesSurviveDecodingAndEncoding() throws {
        let object = try Self.service(replacing: "type: ClusterIP", with: "type: Magic")
        guard case .service(let service) = object else { Issue.record("not a service"); return }
        #expect(service.spec.type == .unknown("Magic"))
        #expect(service.spec.type?.isKnown == false)
        #expect(try Manifest.decode(Manifest.yaml([object])) == [object])
    }

    static let sliceYAML = """
        apiVersion: discovery.k8s.io/v1
        kind: EndpointSlice
        metadata:
          name: web-abc
          namespace: shop
          labels: {kubernetes.io/service-name: web}
        addressType: IPv4
        endpoints:
        - addresses: [10.244.0.5]
        ports:
        - {name: http, port: 8080, protocol: TCP}
        """

    static func slice(replacing old: String, with new: String) throws -> EndpointSlice {
        precondition(sliceYAML.contains(old), "fixture has no \(old)")
        let objects = try Manifest.decode(sliceYAML.replacingOccurrences(of: old, with: new))
        guard case .endpointSlice(let slice)? = objects.first else { throw CancellationError() }
        return slice
    }

    @Test(arguments: [
        ("addresses: [10.244.0.5]", "addresses: [10.244.0.5, 'fd00::5']",
         #"endpoints[0].addresses[1]: "fd00::5" is not an IPv4 address"#),
        ("addresses: [10.244.0.5]", "addresses: [10.244.0.500]",
         #"endpoints[0].addresses[0]: "10.244.0.500" is not an IP address: octet 500 is out of range (0-255)"#),
        ("addresses: [10.244.0.5]", "addresses: []", "endpoints[0].addresses: must have at least one address"),
        ("addressType: IPv4", "addressType: IPv5",
         #"addressType: "IPv5" is not a supported address type (IPv4, IPv6, FQDN)"#),
        ("port: 8080,", "port: 0,", "ports[0].port: 0 is not a valid port (1-65535)"),
        ("protocol: TCP", "protocol: tcp", #"ports[0].protocol: "tcp" is not a supported protocol (TCP, UDP, SCTP)"#),
        ("name: http,", "name: -http,", #"ports[0].name: "-http" is not a DNS-1123 label (lowercase letters, digits and '-')"#),
        ("name: web-abc", "name: web_abc",
         #"metadata.name: "web_abc" is not a DNS-1123 subdomain (lowercase letters, digits, '-' and '.')"#),
    ])
    func sliceProblems(old: String, new: String, expected: String) throws {
        let slice = try Self.slice(replacing: old, with: new)
        let reference = "EndpointSlice shop/\(slice.metadata.name)"
        #expect(slice.validationErrors().map(\.description) == ["\(reference): \(expected)"])
    }

    @Test func sliceWithoutServiceNameIsValidButUnusable() throws {
        let slice = try Self.slice(replacing: "labels: {kubernetes.io/service-name: web}", with: "labels: {app: web}")
        #expect(slice.validationErrors() == [])
        #expect(slice.serviceName == nil)
        #expect(throws: ModelError(object: "EndpointSlice shop/web-abc", field: "metadata.labels",
                                   problem: #"has no "kubernetes.io/service-name" label, so no Service uses it"#)) {
            try slice.requireServiceName()
        }
    }

    @Test func fqdnSlicesSkipAddressChecksAndNilPortMeansAll() throws {
        let slice = try Self.slice(replacing: "addressType: IPv4\nendpoints:\n- addresses: [10.244.0.5]",
                                   with: "addressType: FQDN\nendpoints:\n- addresses: [db.example.com]")
        #expect(slice.validationErrors() == [])
        let allPorts = try Self.slice(replacing: "- {name: http, port: 8080, protocol: TCP}", with: "- {}")
        #expect(allPorts.ports == [EndpointPort()])
        #expect(allPorts.ports?.first?.port == nil)
        #expect(allPorts.validationErrors() == [])
    }

    @Test func nodeProblems() throws {
        let yaml = """
            apiVersion: v1
            kind: Node
            metadata: {name: node-1}
            spec: {podCIDR: 10.244.0.0/24, podCIDRs: [10.244.0.0/24, 'fd00::/129']}
            status: {addresses: [{type: InternalIP, address: 10.0.0.300}, {type: Hostname, address: node-1}]}
            """
        let object = try #require(try Manifest.decode(yaml).first)
        #expect(object.validationErrors().map(\.description) == [
            #"Node node-1: spec.podCIDRs[1]: "fd00::/129" is not a CIDR: prefix length 129 is out of range (0-128)"#,
            #"Node node-1: status.addresses[0].address: "10.0.0.300" is not an IP address: octet 300 is out of range (0-255)"#,
        ])
    }
}

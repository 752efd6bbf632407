import Foundation
import StraitManifest
import StraitModel
import Testing

@Suite struct FixtureTests {
    @Test func clusterIPService() throws {
        let service = try Fixture.service("service-clusterip.json")
        #expect(service.reference == "Service default/web")
        #expect(service.metadata.uid == "0c5b7e1e-3f4c-4b8e-9d0a-6f1e2a7b9c11")
        #expect(service.metadata.resourceVersion == "48213")
        #expect(service.metadata.creationTimestamp == "2024-05-14T09:21:37Z")
        #expect(service.metadata.labels == ["app": "web"])
        #expect(service.metadata.annotations.keys.contains("kubectl.kubernetes.io/last-applied-configuration"))
        #expect(!service.metadata.isDeleting)
        #expect(service.type == .clusterIP)
        #expect(service.spec.clusterIP == "10.96.14.207")
        #expect(service.clusterIPAddresses == [try IPAddress(parsing: "10.96.14.207")])
        #expect(service.spec.ipFamilies == ["IPv4"])
        #expect(service.spec.ipFamilyPolicy == .singleStack)
        #expect(service.spec.selector == ["app": "web"])
        #expect(service.spec.sessionAffinity == SessionAffinity.none)
        #expect(service.sessionAffinityTimeout == nil)
        #expect(service.internalTrafficPolicy == .cluster)
        #expect(service.ports.count == 3)
        #expect(service.ports[0] == ServicePort(name: "http", protocol: .tcp, port: 80, targetPort: .string("http")))
        #expect(service.ports[1].targetPort == .int(9090))
        #expect(service.ports[2].transportProtocol == .udp)
        #expect(service.ports[2].effectiveTargetPort == .int(5353))
        #expect(service.status?.loadBalancer?.ingress == nil)
        #expect(service.validationErrors() == [])
        #expect(!service.isHeadless)
    }

    @Test func nodePortService() throws {
        let service = try Fixture.service("service-nodeport.yaml")
        #expect(service.reference == "Service tools/echo")
        #expect(service.type == .nodePort)
        #expect(service.ports == [ServicePort(protocol: .tcp, port: 8080, targetPort: .int(8080), nodePort: 30080)])
        #expect(service.externalTrafficPolicy == .cluster)
        #expect(service.validationErrors() == [])
    }

    @Test func loadBalancerService() throws {
        let service = try Fixture.service("service-loadbalancer.json")
        #expect(service.reference == "Service ingress-nginx/ingress-nginx-controller")
        #expect(service.type == .loadBalancer)
        #expect(service.externalTrafficPolicy == .local)
        #expect(service.spec.healthCheckNodePort == 32145)
        #expect(service.spec.loadBalancerSourceRanges == ["203.0.113.0/24", "192.0.2.128/25"])
        #expect(service.loadBalancerSourceCIDRs.map(\.description) == ["203.0.113.0/24", "192.0.2.128/25"])
        #expect(service.status?.loadBalancer?.ingress == [
            LoadBalancerIngress(ip: "203.0.113.10", ipMode: "VIP"), LoadBalancerIngress(hostname: "lb.example.com"),
        ])
        #expect(service.loadBalancerIngressAddresses.map(\.description) == ["203.0.113.10"])
        #expect(service.externalIPAddresses.map(\.description) == ["198.51.100.7"])
        #expect(service.ports.map(\.nodePort) == [31080, 31443])
        #expect(service.ports[0].appProtocol == "http")
        #expect(service.spec.sessionAffinity == .clientIP)
        #expect(service.sessionAffinityTimeout == 600)
        #expect(service.spec.allocateLoadBalancerNodePorts == true)
        #expect(service.validationErrors() == [])
    }

    @Test func dualStackService() throws {
        let service = try Fixture.service("service-dualstack.yaml")
        #expect(service.clusterIPAddresses.map(\.description) == ["10.96.7.70", "fd00:10:96::7a0"])
        #expect(service.clusterIPAddresses.map(\.family) == [.ipv4, .ipv6])
        #expect(service.spec.ipFamilies == ["IPv4", "IPv6"])
        #expect(service.spec.ipFamilyPolicy == .requireDualStack)
        #expect(service.internalTrafficPolicy == .local)
        #expect(service.ports[1].transportProtocol == .sctp)
        #expect(service.sessionAffinityTimeout == 10800)
        #expect(service.validationErrors() == [])
    }

    @Test func headlessService() throws {
        let service = try Fixture.service("service-headless.yaml")
        #expect(service.isHeadless)
        #expect(service.spec.clusterIPs == ["None"])
        #expect(service.clusterIPAddresses.isEmpty)
        #expect(service.spec.publishNotReadyAddresses == true)
        #expect(service.validationErrors() == [])
    }

    @Test func externalNameService() throws {
        let service = try Fixture.service("service-externalname.json")
        #expect(service.type == .externalName)
        #expect(service.spec.externalName == "billing.example.com")
        #expect(service.spec.clusterIP == nil)
        #expect(service.clusterIPAddresses.isEmpty)
        #expect(service.ports.isEmpty)
        #expect(service.validationErrors() == [])
    }

    @Test func endpointSliceWithConditionsAndHints() throws {
        let slice = try Fixture.slice("endpointslice-web.json")
        #expect(slice.reference == "EndpointSlice default/web-7xk2p")
        #expect(slice.addressType == .ipv4)
        #expect(slice.serviceName == "web")
        #expect(try slice.requireServiceName() == "web")
        #expect(slice.metadata.generation == 7)
        let endpoints = try #require(slice.endpoints)
        #expect(endpoints.count == 3)
        #expect(endpoints.map(\.isReady) == [true, false, true])
        #expect(endpoints.map(\.isServing) == [true, true, true])
        #expect(endpoints.map(\.isTerminating) == [false, true, false])
        #expect(endpoints[2].conditions == EndpointConditions())
        #expect(endpoints[0].hints?.forZones == [ForZone(name: "eu-west-1a")])
        #expect(endpoints[0].hints?.forNodes == [ForNode(name: "node-a")])
        #expect(endpoints[1].hints == nil)
        #expect(endpoints.map(\.nodeName) == ["node-a", "node-b", "node-c"])
        #expect(endpoints.map(\.zone) == ["eu-west-1a", "eu-west-1b", nil])
        #expect(endpoints[0].targetRef?.name == "web-6d4cf56db6-x2x8p")
        #expect(endpoints[0].ipAddresses == [try IPAddress(parsing: "10.244.1.17")])
        #expect(slice.ports == [
            EndpointPort(name: "http", protocol: .tcp, port: 8080),
            EndpointPort(name: "metrics", protocol: .tcp, port: 9090),
            EndpointPort(name: "dns", protocol: .udp, port: 5353),
        ])
        #expect(slice.validationErrors() == [])
    }

    @Test func ipv6EndpointSlice() throws {
        let slice = try Fixture.slice("endpointslice-ipv6.yaml")
        #expect(slice.addressType == .ipv6)
        #expect(slice.serviceName == "api")
        let endpoints = try #require(slice.endpoints)
        #expect(endpoints.flatMap(\.ipAddresses).map(\.description) == ["fd00:10:244:1::11", "fd00:10:244:2::2a"])
        #expect(endpoints[1].addresses == ["FD00:10:244:2:0:0:0:2A"])
        #expect(endpoints.map(\.isServing) == [true, false])
        #expect(endpoints.map(\.isTerminating) == [false, true])
        #expect(slice.ports?.last?.transportProtocol == .sctp)
        #expect(slice.validationErrors() == [])
    }

    @Test func node() throws {
        let objects = try Fixture.objects("node.yaml")
        guard case .node(let node) = try #require(objects.first) else { Issue.record("not a node"); return }
        #expect(node.reference == "Node node-a")
        #expect(node.metadata.namespace == nil)
        #expect(node.metadata.labels["topology.kubernetes.io/zone"] == "eu-west-1a")
        #expect(node.metadata.labels["node-role.kubernetes.io/control-plane"] == "")
        #expect(node.spec?.podCIDR == "10.244.1.0/24")
        #expect(node.podCIDRs.map(\.description) == ["10.244.1.0/24", "fd00:10:244:1::/64"])
        #expect(node.internalIPs.map(\.description) == ["172.18.0.2", "fc00:f853:ccd:e793::2"])
        #expect(node.externalIPs.isEmpty)
        #expect(node.status?.addresses?.last == NodeAddress(type: "Hostname", address: "node-a"))
        #expect(node.validationErrors() == [])
    }

    @Test func kubectlList() throws {
        let objects = try Fixture.objects("list-kubectl.json")
        #expect(objects.map(\.reference) == ["Service default/kubernetes", "EndpointSlice default/kubernetes"])
        #expect(objects.allSatisfy { $0.validationErrors().isEmpty })
    }

    @Test func typedListWithoutItemKinds() throws {
        let objects = try Fixture.objects("list-services-api.json")
        #expect(objects.map(\.reference) == ["Service default/kubernetes", "Service kube-system/kube-dns"])
        guard case .service(let dns) = objects[1] else { Issue.record("not a service"); return }
        #expect(dns.ports.map(\.name) == ["dns", "dns-tcp", "metrics"])
        #expect(dns.metadata.annotations["prometheus.io/port"] == "9153")
    }

    @Test func typedListDecodesDirectlyWithJSONDecoder() throws {
        let data = Data(try Fixture.text("list-services-api.json").utf8)
        let list = try JSONDecoder().decode(KubeList.self, from: data)
        #expect(list.kind == "ServiceList")
        #expect(list.resourceVersion == "131002")
        #expect(list.items.map(\.kind) == ["Service", "Service"])
        let again = try JSONDecoder().decode(KubeList.self, from: JSONEncoder().encode(list))
        #expect(again == list)
    }

    @Test func standaloneStream() throws {
        let objects = try Fixture.objects("standalone.yaml")
        #expect(objects.map(\.reference) == ["Service default/hello", "EndpointSlice default/hello-1"])
        guard case .service(let service) = objects[0], case .endpointSlice(let slice) = objects[1] else {
            Issue.record("wrong kinds"); return
        }
        #expect(service.type == .clusterIP)
        #expect(service.ports[0].transportProtocol == .tcp)
        #expect(service.ports[0].protocol == nil)
        #expect(service.ports[0].effectiveTargetPort == .int(8080))
        #expect(slice.endpoints?.map(\.isReady) == [true, false])
        #expect(slice.ports == [EndpointPort(port: 8080)])
        #expect(objects.allSatisfy { $0.validationErrors().isEmpty })
    }

    /// Encode to JSON and back gives the same value, and so does encode to YAML and back.
    @Test(arguments: Fixture.all)
    func roundTrips(name: String) throws {
        let objects = try Fixture.objects(name)
        for object in objects {
            let json = try JSONEncoder().encode(object)
            #expect(try JSONDecoder().decode(KubeObject.self, from: json) == object)
        }
        #expect(try Manifest.decode(Manifest.json(objects)) == objects)
        #expect(try Manifest.decode(Manifest.yaml(objects)) == objects)
    }

    @Test(arguments: Fixture.all)
    func decodesWithJSONDecoderToo(name: String) throws {
        guard name.hasSuffix(".json") else { return }
        let data = Data(try Fixture.text(name).utf8)
        let viaYams = try Fixture.objects(name)
        if viaYams.count == 1 && !name.hasPrefix("list") {
            #expect(try JSONDecoder().decode(KubeObject.self, from: data) == viaYams[0])
        } else {
            #expect(try JSONDecoder().decode(KubeList.self, from: data).items == viaYams)
        }
    }
}

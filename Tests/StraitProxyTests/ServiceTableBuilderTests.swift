import StraitModel
@testable import StraitProxy
import Testing

@Suite struct ServiceTableBuilderTests {
    typealias F = Fixture

    @Test func clusterIPServiceWithReadyEndpoints() throws {
        let result = F.build([F.service("web")], [F.slice("web-1", service: "web", endpoints: [
            F.endpoint("10.244.1.5", node: "node-a"), F.endpoint("10.244.2.5", node: "node-b"),
        ])])
        #expect(result.skipped.isEmpty)
        let entry = try #require(result.table.ports[F.name("web")])
        #expect(entry.port == 80)
        #expect(entry.clusterIPs == [F.ip("10.96.0.10")])
        #expect(entry.internalEndpoints.addresses == ["10.244.1.5", "10.244.2.5"])
        #expect(entry.internalEndpoints.allSatisfy { $0.port == 8080 })
        #expect(entry.internalEndpoints.first { $0.isLocal }?.address == F.ip("10.244.1.5"))
        #expect(entry.externalEndpoints.isEmpty)
        #expect(entry.hasEndpoints)
        #expect(entry.affinityTimeout == nil)
    }

    @Test func conditionsDefaultAsKubernetes() throws {
        let result = F.build([F.service("web")], [F.slice("web-1", service: "web", endpoints: [F.endpoint("10.244.1.5")])])
        let endpoint = try #require(result.table.ports[F.name("web")]?.allEndpoints.first)
        #expect(endpoint.isReady && endpoint.isServing && !endpoint.isTerminating)
    }

    @Test func readyFirstThenServingTerminating() throws {
        let ready = F.build([F.service("web")], [F.slice("web-1", service: "web", endpoints: [
            F.endpoint("10.244.1.5", ready: true),
            F.endpoint("10.244.1.6", ready: false, serving: true, terminating: true),
            F.endpoint("10.244.1.7", ready: false, serving: false, terminating: false),
        ])])
        #expect(ready.table.ports[F.name("web")]?.internalEndpoints.addresses == ["10.244.1.5"])

        let fallback = F.build([F.service("web")], [F.slice("web-1", service: "web", endpoints: [
            F.endpoint("10.244.1.6", ready: false, serving: true, terminating: true),
            F.endpoint("10.244.1.7", ready: false, serving: false, terminating: true),
            F.endpoint("10.244.1.8", ready: false, serving: true, terminating: false),
        ])])
        let entry = try #require(fallback.table.ports[F.name("web")])
        #expect(entry.internalEndpoints.addresses == ["10.244.1.6"])
        #expect(entry.hasEndpoints)

        let none = F.build([F.service("web")], [F.slice("web-1", service: "web", endpoints: [
            F.endpoint("10.244.1.7", ready: false, serving: false, terminating: true),
        ])])
        #expect(none.table.ports[F.name("web")]?.internalEndpoints == [])
        #expect(none.table.ports[F.name("web")]?.hasEndpoints == false)
        #expect(none.table.ports[F.name("web")]?.allEndpoints.count == 1)
    }

    @Test func serviceWithoutSlicesHasNoEndpoints() throws {
        let entry = try #require(F.build([F.service("web")], []).table.ports[F.name("web")])
        #expect(!entry.hasEndpoints && entry.internalEndpoints.isEmpty)
    }

    @Test func internalTrafficPolicyLocal() throws {
        let service = F.service("web") { $0.spec.internalTrafficPolicy = .local }
        let slices = [F.slice("web-1", service: "web", endpoints: [
            F.endpoint("10.244.1.5", node: "node-a"), F.endpoint("10.244.2.5", node: "node-b"),
        ])]
        let entry = try #require(F.build([service], slices).table.ports[F.name("web")])
        #expect(entry.internalTrafficPolicyLocal)
        #expect(entry.internalEndpoints.addresses == ["10.244.1.5"])

        // No local endpoint: drop (empty with hasEndpoints), not reject.
        let elsewhere = try #require(F.build([service], slices, node: "node-c").table.ports[F.name("web")])
        #expect(elsewhere.internalEndpoints.isEmpty)
        #expect(elsewhere.hasEndpoints)
    }

    @Test func externalTrafficPolicyLocal() throws {
        let service = F.service("web", type: .nodePort,
                                ports: [ServicePort(name: "http", protocol: .tcp, port: 80, nodePort: 30080)]) {
            $0.spec.externalTrafficPolicy = .local
        }
        let slices = [F.slice("web-1", service: "web", endpoints: [
            F.endpoint("10.244.1.5", node: "node-a"), F.endpoint("10.244.2.5", node: "node-b"),
            F.endpoint("10.244.1.6", ready: false, serving: true, terminating: true, node: "node-a"),
        ])]
        let entry = try #require(F.build([service], slices).table.ports[F.name("web")])
        #expect(entry.nodePort == 30080)
        #expect(entry.externalTrafficPolicyLocal)
        #expect(entry.externalEndpoints.addresses == ["10.244.1.5"])
        #expect(entry.internalEndpoints.addresses == ["10.244.1.5", "10.244.2.5"])

        // Only a terminating local endpoint: the local fallback uses it.
        let terminatingOnly = [F.slice("web-1", service: "web", endpoints: [
            F.endpoint("10.244.2.5", node: "node-b"),
            F.endpoint("10.244.1.6", ready: false, serving: true, terminating: true, node: "node-a"),
        ])]
        let fallback = try #require(F.build([service], terminatingOnly).table.ports[F.name("web")])
        #expect(fallback.externalEndpoints.addresses == ["10.244.1.6"])
        #expect(fallback.internalEndpoints.addresses == ["10.244.2.5"])

        // eTP Local on a ClusterIP-only service does not apply.
        let clusterOnly = F.service("web") { $0.spec.externalTrafficPolicy = .local }
        let plain = try #require(F.build([clusterOnly], slices).table.ports[F.name("web")])
        #expect(!plain.externalTrafficPolicyLocal)
    }

    @Test func topologyZoneHintsAllOrNothing() throws {
        let hinted = [F.slice("web-1", service: "web", endpoints: [
            F.endpoint("10.244.1.5", zone: "a", forZones: ["a"]),
            F.endpoint("10.244.2.5", zone: "b", forZones: ["b"]),
        ])]
        let inZoneA = try #require(F.build([F.service("web")], hinted, zone: "a").table.ports[F.name("web")])
        #expect(inZoneA.internalEndpoints.addresses == ["10.244.1.5"])

        // A zone nobody hints for: hints ignored.
        let inZoneC = try #require(F.build([F.service("web")], hinted, zone: "c").table.ports[F.name("web")])
        #expect(inZoneC.internalEndpoints.count == 2)

        // Node without a zone label: hints ignored.
        let noZone = try #require(F.build([F.service("web")], hinted, zone: nil).table.ports[F.name("web")])
        #expect(noZone.internalEndpoints.count == 2)

        // One ready endpoint without hints: all ignored.
        let partial = [F.slice("web-1", service: "web", endpoints: [
            F.endpoint("10.244.1.5", forZones: ["a"]), F.endpoint("10.244.2.5"),
        ])]
        let mixed = try #require(F.build([F.service("web")], partial, zone: "a").table.ports[F.name("web")])
        #expect(mixed.internalEndpoints.count == 2)

        // An unready endpoint without hints does not count.
        let unready = [F.slice("web-1", service: "web", endpoints: [
            F.endpoint("10.244.1.5", forZones: ["a"]), F.endpoint("10.244.2.5", forZones: ["b"]),
            F.endpoint("10.244.3.5", ready: false),
        ])]
        let filtered = try #require(F.build([F.service("web")], unready, zone: "a").table.ports[F.name("web")])
        #expect(filtered.internalEndpoints.addresses == ["10.244.1.5"])
    }

    @Test func topologyNodeHints() throws {
        let slices = [F.slice("web-1", service: "web", endpoints: [
            F.endpoint("10.244.1.5", node: "node-a", forZones: ["a"], forNodes: ["node-a"]),
            F.endpoint("10.244.2.5", node: "node-b", forZones: ["a"], forNodes: ["node-b"]),
        ])]
        let onA = try #require(F.build([F.service("web")], slices, zone: "a").table.ports[F.name("web")])
        #expect(onA.internalEndpoints.addresses == ["10.244.1.5"])
        // No endpoint for this node: fall to zone hints (both in zone a).
        let onC = try #require(F.build([F.service("web")], slices, node: "node-c", zone: "a").table.ports[F.name("web")])
        #expect(onC.internalEndpoints.count == 2)
    }

    @Test func skipsLabelledExternalNameAndHeadless() {
        let services = [
            F.service("proxied", labels: [ServiceTableBuilder.serviceProxyNameLabel: "other"]),
            F.service("labelled-headless", labels: [ServiceTableBuilder.headlessLabel: ""]),
            F.service("external", clusterIP: nil, type: .externalName) { $0.spec.externalName = "example.com" },
            F.service("headless", clusterIP: "None"),
            F.service("unset", clusterIP: nil),
            F.service("web"),
        ]
        let result = F.build(services, [
            F.slice("web-skip", service: "web", endpoints: [F.endpoint("10.244.9.9")],
                    labels: [ServiceTableBuilder.serviceProxyNameLabel: "other"]),
            F.slice("web-1", service: "web", endpoints: [F.endpoint("10.244.1.5")]),
        ])
        #expect(result.table.ports.keys.map(\.name) == ["web"])
        #expect(result.table.ports[F.name("web")]?.internalEndpoints.addresses == ["10.244.1.5"])
    }

    @Test func slicesMergeAndDeduplicate() throws {
        let result = F.build([F.service("web")], [
            F.slice("web-b", service: "web", endpoints: [F.endpoint("10.244.1.5", node: "node-a"), F.endpoint("10.244.1.7")]),
            F.slice("web-a", service: "web", endpoints: [F.endpoint("10.244.1.5", node: "node-x"), F.endpoint("10.244.1.6")]),
            F.slice("other", service: "other", endpoints: [F.endpoint("10.244.5.5")]),
        ])
        let entry = try #require(result.table.ports[F.name("web")])
        #expect(entry.allEndpoints.addresses == ["10.244.1.5", "10.244.1.6", "10.244.1.7"])
        // The local copy wins a duplicate.
        #expect(entry.allEndpoints.first?.isLocal == true)
        // Same IP on another port is another endpoint.
        let twoPorts = F.build([F.service("web")], [
            F.slice("web-a", service: "web", endpoints: [F.endpoint("10.244.1.5")]),
            F.slice("web-b", service: "web", endpoints: [F.endpoint("10.244.1.5")],
                    ports: [EndpointPort(name: "http", protocol: .tcp, port: 8081)]),
        ])
        #expect(twoPorts.table.ports[F.name("web")]?.allEndpoints.map(\.port) == [8080, 8081])
    }

    @Test func portsMatchByNameAndProtocol() throws {
        let service = F.service("dns", ports: [
            ServicePort(name: "dns", protocol: .udp, port: 53), ServicePort(name: "dns-tcp", protocol: .tcp, port: 53),
        ])
        let result = F.build([service], [F.slice("dns-1", service: "dns", endpoints: [F.endpoint("10.244.1.5")], ports: [
            EndpointPort(name: "dns", protocol: .udp, port: 5353),
            EndpointPort(name: "dns-tcp", protocol: .tcp, port: 5354),
            EndpointPort(name: "metrics", protocol: .tcp, port: 9153),
        ]), F.slice("dns-2", service: "dns", endpoints: [F.endpoint("10.244.1.6")], ports: [
            EndpointPort(name: "dns", protocol: .tcp, port: 9999),  // name matches, protocol does not
        ])])
        #expect(result.skipped.isEmpty)
        #expect(result.table.ports.count == 2)
        #expect(result.table.ports[F.name("dns", port: "dns", protocol: .udp)]?.internalEndpoints.map(\.port) == [5353])
        #expect(result.table.ports[F.name("dns", port: "dns-tcp", protocol: .tcp)]?.internalEndpoints.map(\.port) == [5354])

        // Unnamed single port matches an unnamed slice port (protocol defaulting to TCP).
        let unnamed = F.build([F.service("web", ports: [ServicePort(port: 80)])], [F.slice("web-1", service: "web",
            endpoints: [F.endpoint("10.244.1.5")], ports: [EndpointPort(port: 8080)])])
        #expect(unnamed.table.ports[F.name("web", port: "")]?.internalEndpoints.map(\.port) == [8080])
    }

    @Test func dualStack() throws {
        let service = F.service("web", clusterIP: "10.96.0.10", clusterIPs: ["10.96.0.10", "fd00::10"]) {
            $0.spec.externalIPs = ["192.0.2.1", "2001:db8::1"]
        }
        let slices = [
            F.slice("web-v4", service: "web", endpoints: [F.endpoint("10.244.1.5")]),
            F.slice("web-v6", service: "web", addressType: .ipv6, endpoints: [
                F.endpoint("fd00:244::5", ready: false, serving: true, terminating: true),
            ]),
        ]
        let entry = try #require(F.build([service], slices).table.ports[F.name("web")])
        #expect(entry.clusterIPs == [F.ip("10.96.0.10"), F.ip("fd00::10")])
        // Selection per family: IPv6 falls back to its terminating endpoint on its own.
        #expect(entry.internalEndpoints.addresses == ["10.244.1.5", "fd00:244::5"])
        let v6 = try #require(entry.plan(for: .ipv6))
        #expect(v6.clusterIPs == [F.ip("fd00::10")] && v6.externalIPs == [F.ip("2001:db8::1")])
        #expect(v6.internalEndpoints.addresses == ["fd00:244::5"] && v6.hasEndpoints)
        #expect(entry.plan(for: .ipv4)?.internalEndpoints.addresses == ["10.244.1.5"])

        // A single-stack IPv4 service ignores IPv6 slices and IPv6 externalIPs.
        let v4only = F.service("web") { $0.spec.externalIPs = ["192.0.2.1", "2001:db8::1"] }
        let single = try #require(F.build([v4only], slices).table.ports[F.name("web")])
        #expect(single.allEndpoints.addresses == ["10.244.1.5"])
        #expect(single.externalIPs == [F.ip("192.0.2.1")])
        #expect(single.plan(for: .ipv6) == nil)
    }

    @Test func serviceFieldsFilledIn() throws {
        let service = F.service("lb", type: .loadBalancer,
                                ports: [ServicePort(name: "http", protocol: .tcp, port: 80, nodePort: 30080)]) {
            $0.spec.externalIPs = ["192.0.2.10"]
            $0.spec.loadBalancerSourceRanges = ["203.0.113.0/24"]
            $0.spec.sessionAffinity = .clientIP
            $0.spec.externalTrafficPolicy = .local
            $0.spec.healthCheckNodePort = 32000
            $0.status = ServiceStatus(loadBalancer: LoadBalancerStatus(ingress: [
                LoadBalancerIngress(ip: "198.51.100.7"), LoadBalancerIngress(hostname: "lb.example.com"),
                LoadBalancerIngress(ip: "198.51.100.8", ipMode: "Proxy"),
            ]))
        }
        let entry = try #require(F.build([service], []).table.ports[F.name("lb")])
        #expect(entry.nodePort == 30080)
        #expect(entry.externalIPs == [F.ip("192.0.2.10")])
        #expect(entry.loadBalancerIPs == [F.ip("198.51.100.7")])
        #expect(entry.loadBalancerSourceRanges == [IPCIDR("203.0.113.0/24")!])
        #expect(entry.affinityTimeout == 10800)
        #expect(entry.healthCheckNodePort == 32000)
        #expect(entry.hasExternalAddresses)

        let custom = F.service("web") {
            $0.spec.sessionAffinity = .clientIP
            $0.spec.sessionAffinityConfig = SessionAffinityConfig(clientIP: ClientIPConfig(timeoutSeconds: 60))
            $0.spec.healthCheckNodePort = 32000
        }
        let affinity = try #require(F.build([custom], []).table.ports[F.name("web")])
        #expect(affinity.affinityTimeout == 60)
        #expect(affinity.healthCheckNodePort == nil)  // only LoadBalancer with eTP Local
    }

    @Test func badObjectsSkippedWithReasonsOthersKept() throws {
        let services = [
            F.service("bad-ip", clusterIP: "10.96.0.300"),
            F.service("bad-port", ports: [ServicePort(name: "http", protocol: .tcp, port: 70000)]),
            F.service("bad-proto", ports: [ServicePort(name: "http", protocol: .unknown("ICMP"), port: 80)]),
            F.service("web"),
        ]
        let slices = [
            F.slice("orphan-1", service: "missing", endpoints: [F.endpoint("10.244.1.5")]),
            F.slice("nolabel", service: nil, endpoints: [F.endpoint("10.244.1.5")]),
            F.slice("web-bad", service: "web", endpoints: [F.endpoint("10.244.1.999")]),
            F.slice("web-1", service: "web", endpoints: [F.endpoint("10.244.1.6")]),
        ]
        let result = F.build(services, slices)
        #expect(result.table.ports.keys.map(\.name) == ["web"])
        #expect(result.table.ports[F.name("web")]?.internalEndpoints.addresses == ["10.244.1.6"])
        let reasons = Dictionary(result.skipped.map { ($0.object, $0.reason) }, uniquingKeysWith: { a, _ in a })
        #expect(reasons["Service default/bad-ip"]?.contains("spec.clusterIP") == true)
        #expect(reasons["Service default/bad-port"]?.contains("spec.ports[0].port") == true)
        #expect(reasons["Service default/bad-proto"]?.contains("spec.ports[0].protocol") == true)
        #expect(reasons["EndpointSlice default/orphan-1"]?.contains("default/missing does not exist") == true)
        #expect(reasons["EndpointSlice default/nolabel"]?.contains("kubernetes.io/service-name") == true)
        #expect(reasons["EndpointSlice default/web-bad"]?.contains("endpoints[0].addresses[0]") == true)
        #expect(result.skipped.count == 6)
    }

    @Test func changedPortsAndDeterminism() {
        let a = F.build([F.service("web"), F.service("api", clusterIP: "10.96.0.11")], [
            F.slice("web-1", service: "web", endpoints: [F.endpoint("10.244.1.5")]),
        ]).table
        let b = F.build([F.service("web"), F.service("db", clusterIP: "10.96.0.12")], [
            F.slice("web-1", service: "web", endpoints: [F.endpoint("10.244.1.6")]),
        ]).table
        let changes = b.changedPorts(since: a)
        #expect(changes.upserted.map(\.name.name) == ["db", "web"])
        #expect(changes.removed.map(\.name) == ["api"])
        #expect(F.build([F.service("web")], []).table == F.build([F.service("web")], []).table)
    }
}

@Suite struct IncrementalSnapshotTests {
    typealias F = Fixture

    /// After any sequence of changes, the incrementally kept table equals a full build.
    @Test func incrementalEqualsFullBuild() {
        var objects = ProxyObjects()
        var generator = SystemRandomNumberGenerator()
        objects.apply(.replaceAll([]))
        for step in 0..<400 {
            let service = "svc-\(Int.random(in: 0..<8, using: &generator))"
            let event: ProxySourceEvent
            switch Int.random(in: 0..<7, using: &generator) {
            case 0:
                event = .upsert(.service(F.service(service, clusterIP: "10.96.0.\(step % 200 + 1)")))
            case 1:
                event = .delete(ProxyObjectID(kind: .service, namespace: "default", name: service))
            case 2, 3:
                let target = Bool.random(using: &generator) ? service : "svc-\(Int.random(in: 0..<8, using: &generator))"
                event = .upsert(.endpointSlice(F.slice("slice-\(step % 10)", service: target, endpoints: [
                    F.endpoint("10.244.\(step % 3).\(step % 50 + 1)", ready: Bool.random(using: &generator),
                               serving: true, terminating: Bool.random(using: &generator), node: "node-a"),
                ])))
            case 4:
                event = .upsert(.endpointSlice(F.slice("slice-\(step % 10)", service: nil, endpoints: [F.endpoint("10.244.9.9")])))
            case 5:
                event = .delete(ProxyObjectID(kind: .endpointSlice, namespace: "default", name: "slice-\(step % 10)"))
            default:
                event = .upsert(.node(Node(metadata: ObjectMeta(name: "node-a", labels: [
                    "topology.kubernetes.io/zone": Bool.random(using: &generator) ? "a" : "b",
                ]))))
            }
            objects.apply(event)
            if step % 3 == 0 {
                let incremental = objects.build(nodeName: "node-a")
                let full = ServiceTableBuilder(nodeName: "node-a", zone: objects.zone(ofNode: "node-a")).build(
                    services: Array(objects.services.values), slices: Array(objects.slices.values))
                #expect(incremental == full, "step \(step)")
                if incremental != full { return }
            }
        }
    }
}

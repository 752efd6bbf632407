import Foundation
import StraitModel
@testable import StraitProxy

/// Small builders for the objects the tests feed the proxy.
enum Fixture {
    static func service(_ name: String, namespace: String = "default", clusterIP: String? = "10.96.0.10",
                        clusterIPs: [String]? = nil, type: ServiceType? = nil,
                        ports: [ServicePort] = [ServicePort(name: "http", protocol: .tcp, port: 80)],
                        labels: [String: String] = [:], configure: (inout Service) -> Void = { _ in }) -> Service {
        var spec = ServiceSpec(type: type, ports: ports, clusterIP: clusterIP, clusterIPs: clusterIPs)
        spec.selector = ["app": name]
        var service = Service(metadata: ObjectMeta(name: name, namespace: namespace, labels: labels), spec: spec)
        configure(&service)
        return service
    }

    static func endpoint(_ address: String, ready: Bool? = nil, serving: Bool? = nil, terminating: Bool? = nil,
                         node: String? = nil, zone: String? = nil, forZones: [String]? = nil,
                         forNodes: [String]? = nil) -> Endpoint {
        let conditions = (ready == nil && serving == nil && terminating == nil)
            ? nil : EndpointConditions(ready: ready, serving: serving, terminating: terminating)
        let hints = (forZones == nil && forNodes == nil) ? nil
            : EndpointHints(forZones: forZones?.map(ForZone.init), forNodes: forNodes?.map(ForNode.init))
        return Endpoint(addresses: [address], conditions: conditions, nodeName: node, zone: zone, hints: hints)
    }

    static func slice(_ name: String, service: String?, namespace: String = "default", addressType: EndpointAddressType = .ipv4,
                      endpoints: [Endpoint], ports: [EndpointPort] = [EndpointPort(name: "http", protocol: .tcp, port: 8080)],
                      labels: [String: String] = [:], annotations: [String: String] = [:]) -> EndpointSlice {
        var allLabels = labels
        if let service { allLabels[EndpointSlice.serviceNameLabel] = service }
        return EndpointSlice(metadata: ObjectMeta(name: name, namespace: namespace, labels: allLabels, annotations: annotations),
                             addressType: addressType, endpoints: endpoints, ports: ports)
    }

    static func ip(_ text: String) -> IPAddress { IPAddress(text)! }

    static func build(_ services: [Service], _ slices: [EndpointSlice], node: String = "node-a",
                      zone: String? = nil) -> ServiceTableBuilder.Result {
        ServiceTableBuilder(nodeName: node, zone: zone).build(services: services, slices: slices)
    }

    static func name(_ service: String, port: String = "http", protocol: TransportProtocol = .tcp,
                     namespace: String = "default") -> ServicePortName {
        ServicePortName(namespace: namespace, name: service, port: port, protocol: `protocol`)
    }
}

extension Array where Element == ProxyEndpoint {
    var addresses: [String] { map { "\($0.address)" } }
}

extension ServicePortPlan {
    /// The endpoints cluster IP traffic is forwarded to (none when it is dropped or rejected).
    var internalEndpoints: [ProxyEndpoint] {
        if case .forward(let pool) = clusterIPTraffic { endpoints(of: pool) } else { [] }
    }

    /// The endpoints external traffic is forwarded to (none when it is dropped, rejected or absent).
    var externalEndpoints: [ProxyEndpoint] {
        if case .forward(let pool) = externalTraffic { endpoints(of: pool) } else { [] }
    }
}

extension ServicePortEntry {
    /// Every family's `internalEndpoints`, IPv4 first.
    var internalEndpoints: [ProxyEndpoint] { plans.flatMap(\.internalEndpoints) }
    /// Every family's `externalEndpoints`, IPv4 first.
    var externalEndpoints: [ProxyEndpoint] { plans.flatMap(\.externalEndpoints) }
}

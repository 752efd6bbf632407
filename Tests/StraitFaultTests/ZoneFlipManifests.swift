/// The store states the kill-fault suite alternates between. Every Service has one endpoint in
/// zone a (ep0) and one in zone b (ep1), each hinted for its zone; the node's zone label picks which
/// one every ClusterIP reaches. Flipping the label (one object, one store write) changes the rules
/// of every Service in one sync: state A (zone a, all to ep0) and state B (zone b, all to ep1).
enum ZoneFlipManifests {
    enum State: String, CaseIterable {
        case a, b

        var other: State { self == .a ? .b : .a }
        /// The endpoint a new connection reaches in this state.
        var endpoint: String { self == .a ? "ep0" : "ep1" }
    }

    /// The ClusterIP of Service `index` (10.96.0.10 for the first).
    static func clusterIP(_ index: Int) -> String { "10.96.\(index / 200).\(index % 200 + 10)" }

    /// The node "node" in `state`'s zone.
    static func node(_ state: State) -> String {
        """
        apiVersion: v1
        kind: Node
        metadata:
          name: node
          labels: {topology.kubernetes.io/zone: \(state.rawValue)}
        """
    }

    /// `count` Services svc-N, each with one EndpointSlice of two endpoints.
    static func services(_ count: Int) -> String {
        (0..<count).map { index in
            """
            apiVersion: v1
            kind: Service
            metadata: {name: svc-\(index), namespace: default}
            spec:
              clusterIP: \(clusterIP(index))
              ports: [{name: http, port: 80, targetPort: \(KillTopology.serverPort), protocol: TCP}]
            ---
            apiVersion: discovery.k8s.io/v1
            kind: EndpointSlice
            metadata:
              name: svc-\(index)-1
              namespace: default
              labels: {kubernetes.io/service-name: svc-\(index)}
            addressType: IPv4
            ports: [{name: http, port: \(KillTopology.serverPort), protocol: TCP}]
            endpoints:
            - addresses: [\(KillTopology.endpointIP(0))]
              conditions: {ready: true}
              nodeName: other-a
              zone: a
              hints: {forZones: [{name: a}]}
            - addresses: [\(KillTopology.endpointIP(1))]
              conditions: {ready: true}
              nodeName: other-b
              zone: b
              hints: {forZones: [{name: b}]}
            """
        }.joined(separator: "\n---\n")
    }
}

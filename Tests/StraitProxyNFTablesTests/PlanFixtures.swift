import StraitModel
import StraitNFT
import StraitProxy
@testable import StraitProxyNFTables

/// Hand-built plans, as the core decides them, for translation tests that need no kernel.
enum Plans {
    static let web = ServicePortName(namespace: "default", name: "web", port: "http", protocol: .tcp)
    static let dns = ServicePortName(namespace: "kube-system", name: "dns", port: "dns", protocol: .udp)
    static let sticky = ServicePortName(namespace: "default", name: "sticky", port: "http", protocol: .tcp)
    static let podCIDR = IPCIDR("10.244.0.0/16")!
    static let options = ProxyOptions(clusterCIDRs: [podCIDR])

    static func endpoints(_ count: Int, from first: Int = 1, local: Bool = false) -> [ProxyEndpoint] {
        (first..<(first + count)).map {
            ProxyEndpoint(address: IPAddress("10.244.\($0).2")!, port: 8080, isLocal: local)
        }
    }

    /// A ClusterIP port forwarding to `endpoints` (rejecting when there are none).
    static func clusterIP(_ name: ServicePortName = web, ip: String = "10.96.0.10", port: UInt16 = 80,
                          endpoints: [ProxyEndpoint], affinity: Int? = nil) -> ServicePortPlan {
        ServicePortPlan(name: name, family: .ipv4, port: port, clusterIPs: [IPAddress(ip)!], affinityTimeout: affinity,
                        clusterPool: endpoints.isEmpty ? nil : endpoints,
                        clusterIPTraffic: endpoints.isEmpty ? .reject : .forward(.cluster),
                        clusterIPMasquerade: .outside(podCIDR))
    }

    static func entry(_ plan: ServicePortPlan) -> ServicePortEntry {
        ServicePortEntry(name: plan.name, port: plan.port, clusterIPs: plan.clusterIPs, nodePort: plan.nodePort,
                         externalIPs: plan.externalIPs, loadBalancerIPs: plan.loadBalancerIPs,
                         affinityTimeout: plan.affinityTimeout, allEndpoints: plan.reachableEndpoints, plans: [plan])
    }

    static func table(_ plans: ServicePortPlan...) -> ServiceTable { ServiceTable(plans.map(entry)) }

    static let layout = NFTablesLayout(family: .ipv4, options: options)
}

extension Transaction {
    /// The sets whose elements the transaction adds or deletes, and whether it touches anything else.
    var onlyElements: Bool {
        changes.allSatisfy { change in
            switch change {
            case .add(.elements), .delete(.elements): true
            default: false
            }
        }
    }

    var elementSets: Set<String> {
        Set(changes.compactMap { change in
            switch change {
            case .add(.elements(let set, _)), .delete(.elements(let set, _)): set.name
            default: nil
            }
        })
    }
}

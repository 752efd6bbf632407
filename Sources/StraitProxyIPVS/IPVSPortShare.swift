import StraitModel
import StraitNetlink
import StraitProxy

/// One Service port's share of what the IPVS mode programs in one family: its virtual services and
/// real servers, its addresses on the dummy device, and its part of the helper rules. Kept per port,
/// so a partial sync translates and compares only the ports that changed, not every port.
struct IPVSPortShare: Sendable, Hashable {
    /// What the plan asks for.
    var wanted: IPVSVirtualServers
    /// What the kernel holds for this port: `wanted` and the real servers still draining (weight 0).
    var programmed: IPVSVirtualServers
    /// Its cluster, external and load-balancer IPs, as the device holds them.
    var addresses: Set<String>
    var rules: IPVSHelperRules.Port

    init(plan: ServicePortPlan, family: IPFamily, scheduler: String, nodeAddresses: [IPAddress]) {
        wanted = IPVSVirtualServers(plans: [plan], scheduler: scheduler, nodeAddresses: nodeAddresses)
        programmed = wanted
        addresses = Set((plan.clusterIPs + plan.externalIPs + plan.loadBalancerIPs).map(\.description))
        rules = IPVSHelperRules.Port(family: family, plan: plan, nodeAddresses: nodeAddresses)
    }
}

/// How many ports use each value (a device address, a hairpin element), so a value leaves the
/// kernel only when its last user does.
struct UseCounts<Value: Hashable & Sendable>: Sendable {
    private(set) var counts: [Value: Int] = [:]

    /// Counts `removed` out and `added` in; returns the values that gained their first user and
    /// those that lost their last.
    mutating func update(removing removed: Set<Value>, adding added: Set<Value>) -> (first: [Value], last: [Value]) {
        var first: [Value] = [], last: [Value] = []
        for value in added.subtracting(removed) {
            counts[value, default: 0] += 1
            if counts[value] == 1 { first.append(value) }
        }
        for value in removed.subtracting(added) {
            guard let count = counts[value] else { continue }
            if count <= 1 {
                counts[value] = nil
                last.append(value)
            } else {
                counts[value] = count - 1
            }
        }
        return (first, last)
    }

    var values: Set<Value> { Set(counts.keys) }
}

import StraitModel
import StraitOverlay
import Testing

/// The route table's diffs, without a kernel (rootless): the one an event's subnets limit must be
/// the whole-table diff cut to those subnets, so handling one lease event never misses a change.
@Suite struct RouteTableTests {
    func lease(_ third: Int, node: Int, mac: String = "02:00:00:00:00:01") throws -> SubnetLease {
        SubnetLease(subnet: try IPv4CIDR(networkParsing: "10.244.\(third).0/24"),
                    publicIP: try IPv4Address(parsing: "192.168.100.\(node)"), backendType: "vxlan", vni: 1, vtepMAC: mac)
    }

    func subnet(_ third: Int) throws -> IPv4CIDR { try IPv4CIDR(networkParsing: "10.244.\(third).0/24") }

    @Test func aDiffForSomeSubnetsIsTheWholeDiffCutToThem() throws {
        let old = RouteTable([try lease(1, node: 1), try lease(2, node: 2), try lease(3, node: 3), try lease(4, node: 4)])
        // 1 unchanged, 2 moved to another node, 3 gone, 5 new, 4 unchanged.
        let new = RouteTable([try lease(1, node: 1), try lease(2, node: 9, mac: "02:00:00:00:00:09"),
                              try lease(4, node: 4), try lease(5, node: 5)])
        let whole = old.diff(to: new)
        #expect(whole.removed.map(\.subnet) == [try subnet(2), try subnet(3)])
        #expect(whole.added.map(\.subnet) == [try subnet(2), try subnet(5)])

        for third in 1...6 {
            let cut = old.diff(to: new, for: [try subnet(third)])
            #expect(cut.removed == whole.removed.filter { $0.subnet.description == "10.244.\(third).0/24" })
            #expect(cut.added == whole.added.filter { $0.subnet.description == "10.244.\(third).0/24" })
        }
        var all = [try subnet(2)]
        for third in 1...6 { all.append(try subnet(third)) }
        let every = old.diff(to: new, for: all)
        #expect(every == whole, "every subnet, one of them twice: the whole diff, each entry once")
        #expect(old.diff(to: old, for: [try subnet(1), try subnet(7)]).isEmpty)
    }
}

import Foundation
import StraitModel
import Testing

@testable import StraitOverlay

/// What fuzz-store-values found in lease values (the raw inputs are in Tests/Fuzz/regressions/store-values/).
@Suite struct LeaseFuzzFoundTests {
    static let key = "/strait/network/subnets/10.244.2.0-24"

    /// The value was built by pasting strings between quotes: a backend type (or MAC) with a quote,
    /// a backslash or a newline made JSON that no agent could read back.
    @Test(arguments: ["vxl\n", "a\"b", "c\\d", "<tag>&", "tab\there", "\u{1}", "\u{2028}"])
    func stringsAreEscapedAsGoWritesThem(backendType: String) throws {
        let lease = SubnetLease(subnet: try IPv4CIDR(networkParsing: "10.244.2.0/24"),
                                publicIP: try IPv4Address(parsing: "192.168.100.2"), backendType: backendType,
                                vni: 1, vtepMAC: "0a:58:0a:f4:02:00")
        #expect(SubnetLease(key: Self.key, value: lease.value) == lease)
        #expect(try JSONSerialization.jsonObject(with: lease.value) is [String: Any])
    }

    @Test func plainValuesAreByteForByteFlannels() {
        #expect(SubnetLease.jsonString("vxlan") == #""vxlan""#)
        #expect(SubnetLease.jsonString("a<b>&\n\"") == #""a\u003cb\u003e\u0026\n\"""#)
    }

    /// IPv6 backend data under a key that names no IPv6 subnet is dropped on read (it was kept, but
    /// never written back, so the lease did not read back equal).
    @Test func ipv6BackendDataWithoutAnIPv6SubnetIsNotKept() throws {
        let value = Data(#"{"PublicIP":"192.168.100.2","BackendType":"vxlan","BackendV6Data":{"VNI":1,"VtepMAC":"0a:58:0a:f4:02:01"}}"#.utf8)
        let lease = try #require(SubnetLease(key: Self.key, value: value))
        #expect(lease.ipv6VtepMAC == nil)
        #expect(SubnetLease(key: lease.key, value: lease.value) == lease)
    }
}

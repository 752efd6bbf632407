import StraitModel
import StraitSystem
import Testing

@testable import StraitCNI

/// The names and MACs strait-cni writes in hex. The expected values are what the plugin wrote before
/// they were built byte by byte, so pods made before keep their host veth names (DEL and GC find it by name).
@Suite struct HexNamesTests {
    @Test func hexDigitsArePaddedLowercaseNibbles() {
        #expect(HexDigits.text(0x2a, count: 4) == "002a")
        #expect(HexDigits.text(0xdead_beef_0123_4567, count: 16) == "deadbeef01234567")
        #expect(HexDigits.text(0xdead_beef_0123_4567, count: 3) == "567")
        #expect(HexDigits.text(bytes: [0x0a, 0x58, 0xff, 0x00], separator: UInt8(ascii: ":")) == "0a:58:ff:00")
        #expect(HexDigits.text(bytes: [], separator: UInt8(ascii: ":")) == "")
    }

    @Test func hostVethNameIsUnchanged() {
        #expect(hostVethName(for: AttachmentKey(containerID: "cmp1", ifname: "eth0")) == "st98903ba7ecac")
        let name = hostVethName(for: AttachmentKey(containerID: String(repeating: "f", count: 64), ifname: "net1"))
        #expect(isHostVethName(name))
    }

    @Test func podMACIsUnchanged() throws {
        let lease = Lease(containerID: "c", ifname: "eth0", address: try IPAddress(parsing: "10.251.0.193"),
                          subnet: try IPCIDR(parsing: "10.251.0.0/16"))
        #expect(podMAC(for: [lease]) == "0a:58:0a:fb:00:c1")
        #expect(podMAC(for: []) == "0a:58:00:00:00:00")
    }
}

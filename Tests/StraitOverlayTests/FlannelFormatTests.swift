import Foundation
import StraitModel
import StraitOverlay
import Testing

/// flannel's store and file formats, read and written without a kernel (rootless).
@Suite struct FlannelFormatTests {
    @Test func aLeaseIsWrittenAsFlannelsGoEncoderWritesIt() throws {
        let lease = SubnetLease(subnet: try IPv4CIDR(networkParsing: "10.244.17.0/24"), publicIP: try IPv4Address(parsing: "192.168.100.1"),
                                backendType: "vxlan", vni: 1, vtepMAC: "2e:4f:9a:10:00:01")
        #expect(String(decoding: lease.value, as: UTF8.self)
            == #"{"PublicIP":"192.168.100.1","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"2e:4f:9a:10:00:01"}}"#)
        #expect(lease.key(in: .flannel) == "/coreos.com/network/subnets/10.244.17.0-24")
        #expect(lease.key(in: .strait) == "/strait/network/subnets/10.244.17.0-24")
        let hostGW = SubnetLease(subnet: lease.subnet, publicIP: lease.publicIP, backendType: "host-gw")
        #expect(String(decoding: hostGW.value, as: UTF8.self) == #"{"PublicIP":"192.168.100.1","PublicIPv6":null,"BackendType":"host-gw"}"#)
    }

    @Test func aDualStackLeaseRoundTripsThroughFlannelsKeyAndValue() throws {
        let key = "/coreos.com/network/subnets/10.244.17.0-24&fd00:10:244:11::-64"
        let value = #"{"PublicIP":"192.168.100.1","PublicIPv6":"fd00:100::1","BackendType":"vxlan","#
            + #""BackendData":{"VNI":1,"VtepMAC":"2e:4f:9a:10:00:01"},"BackendV6Data":{"VNI":1,"VtepMAC":"2e:4f:9a:10:00:02"}}"#
        let lease = try #require(SubnetLease(key: key, value: Data(value.utf8)))
        #expect(lease.subnet.description == "10.244.17.0/24")
        #expect(lease.ipv6Subnet?.description == "fd00:10:244:11::/64")
        #expect(lease.publicIPv6?.description == "fd00:100::1")
        #expect(lease.ipv6VtepMAC == "2e:4f:9a:10:00:02")
        #expect(lease.key(in: .flannel) == key)
        #expect(String(decoding: lease.value, as: UTF8.self) == value)
    }

    @Test func flannelsOlderLeaseWithoutVNIIsRead() throws {
        // Documentation/reservations.md's example.
        let value = #"{"PublicIP":"10.37.7.195","BackendType":"vxlan","BackendData":{"VtepMAC":"82:4b:b6:2f:54:4e"}}"#
        let lease = try #require(SubnetLease(key: "/coreos.com/network/subnets/10.5.34.0-24", value: Data(value.utf8)))
        #expect(lease.vtepMAC == "82:4b:b6:2f:54:4e" && lease.vni == nil && lease.publicIPv6 == nil)
        #expect(SubnetLease(key: "/coreos.com/network/subnets/10.5.34.0-24", value: Data("{}".utf8)) == nil)
        #expect(SubnetLease(key: "/coreos.com/network/config", value: Data(value.utf8)) == nil)
    }

    @Test func theEtcdPrefixIsValidatedAndNamesTheDevice() throws {
        #expect(try KeyLayout(prefix: "/coreos.com/network/") == .flannel)
        #expect(KeyLayout.flannel.deviceName(vni: 1) == "flannel.1")
        #expect(KeyLayout.flannel.deviceName(vni: 1, ipv6: true) == "flannel-v6.1")
        #expect(KeyLayout.strait.deviceName(vni: 7) == "strait.7")
        #expect(try KeyLayout(prefix: "/other/net").deviceName(vni: 1) == "strait.1")
        for bad in ["coreos.com/network", "", "/", "/a b"] {
            #expect(throws: OverlayError.self, "\(bad)") { try KeyLayout(prefix: bad) }
        }
    }

    @Test func backendOptionsAreReadAndUnknownOnesRefusedByName() throws {
        let config = try NetworkConfig(json: Data(#"""
            {"Network":"10.244.0.0/16","Backend":{"Type":"vxlan","VNI":7,"Port":4789,"MTU":9000,"GBP":true,
             "DirectRouting":true,"Learning":true}}
            """#.utf8))
        #expect(config.backend == BackendConfig(type: .vxlan, vni: 7, port: 4789, mtu: 9000, gbp: true,
                                                directRouting: true, learning: true))
        #expect(try NetworkConfig(json: config.json) == config, "the written config reads back the same")
        let refusals: [(String, String)] = [
            (#"{"Network":"10.244.0.0/16","Backend":{"Type":"vxlan","MacPrefix":"0e:2a"}}"#, "\"Backend.MacPrefix\" is not supported"),
            (#"{"Network":"10.244.0.0/16","Backend":{"Type":"vxlan","GBP":"yes"}}"#, "\"Backend.GBP\" must be true or false"),
            (#"{"Network":"10.244.0.0/16","Backend":{"Type":"vxlan","MTU":100}}"#, "\"Backend.MTU\" 100"),
            (#"{"Network":"10.244.0.0/16","Backend":{"Type":"host-gw","DirectRouting":true}}"#, "\"Backend.DirectRouting\" is not supported for host-gw"),
            (#"{"Network":"10.244.0.0/16","EnableIPv4":false}"#, "\"EnableIPv4\" false"),
            (#"{"Network":"10.244.0.0/16","EnableIPv6":true}"#, "no \"IPv6Network\""),
            (#"{"Network":"10.244.0.0/16","EnableIPv6":true,"IPv6Network":"fd00::/56","IPv6SubnetLen":40}"#, "\"IPv6SubnetLen\" 40"),
        ]
        for (json, message) in refusals {
            #expect { try NetworkConfig(json: Data(json.utf8)) } throws: { error in
                (error as? OverlayError)?.message.contains(message) == true
            }
        }
    }

    @Test func dualStackSettingsAreRead() throws {
        let config = try NetworkConfig(json: Data(#"{"Network":"10.244.0.0/16","EnableIPv6":true,"IPv6Network":"fd00:10:244::/56"}"#.utf8))
        #expect(config.ipv6 == IPv6Settings(network: try IPv6CIDR(networkParsing: "fd00:10:244::/56"), subnetLength: 64))
    }

    @Test func subnetFileNamesFollowThePathOrTheFlag() throws {
        #expect(OverlayOptions(subnetFile: "/run/flannel/subnet.env").effectiveSubnetFileNaming == .flannel)
        #expect(OverlayOptions(subnetFile: "/run/strait/subnet.env").effectiveSubnetFileNaming == .strait)
        #expect(OverlayOptions(subnetFile: "/x/subnet.env", subnetFileNaming: .flannel).effectiveSubnetFileNaming == .flannel)
        let file = SubnetFile(network: try IPv4CIDR(networkParsing: "10.244.0.0/16"), subnet: try IPv4CIDR(networkParsing: "10.244.17.0/24"),
                              mtu: 1450, ipMasq: true)
        let text = file.text(naming: .flannel)
        #expect(text == "FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.17.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n")
        #expect(try SubnetFile(parsing: text) == file, "either naming reads back the same")
    }

    @Test func renewMarginIsFlannelsAndValidated() throws {
        #expect(OverlayOptions().renewInterval == .seconds(23 * 3600))
        #expect(OverlayOptions(renewMarginMinutes: 1439).renewInterval == .seconds(60))
        #expect(OverlayOptions(leaseTTL: 60).renewInterval == .seconds(15), "a TTL shorter than the margin renews at a quarter")
        for bad in [0, 1440] {
            #expect { try OverlayOptions(renewMarginMinutes: bad).validate() } throws: { error in
                (error as? OverlayError)?.message.contains("--subnet-lease-renew-margin \(bad)") == true
            }
        }
        #expect { try OverlayOptions(healthzIP: "nowhere", healthzPort: 8471).validate() } throws: { error in
            (error as? OverlayError)?.message.contains("--healthz-ip nowhere") == true
        }
    }
}

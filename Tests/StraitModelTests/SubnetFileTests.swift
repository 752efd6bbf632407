import StraitModel
import Testing

/// subnet.env: what the overlay writes is what the CNI plugin reads.
@Suite struct SubnetFileTests {
    @Test func writtenByTheOverlayReadsBackTheSame() throws {
        let file = SubnetFile(network: try IPv4CIDR(parsing: "10.244.0.0/16"), subnet: try IPv4CIDR(parsing: "10.244.7.0/24"),
                              mtu: 1450, ipMasq: true)
        #expect(file.text == "STRAIT_NETWORK=10.244.0.0/16\nSTRAIT_SUBNET=10.244.7.1/24\nSTRAIT_MTU=1450\nSTRAIT_IPMASQ=true\n")
        let read = try SubnetFile(parsing: file.text)
        #expect(read == file)
        #expect(read.ipv4Subnet?.description == "10.244.7.0/24")
    }

    @Test func commentsBlankLinesAndUnknownKeysAreSkipped() throws {
        let read = try SubnetFile(parsing: "# written by hand\n\nSTRAIT_IPV6_SUBNET=fd00::1/64\r\nOTHER=1\n")
        #expect(read.ipv6Subnet == "fd00::1/64")
        #expect(read.subnet == nil)
    }

    @Test(arguments: [
        ("STRAIT_SUBNET=10.244.1.1/24\nnonsense\n", "line 2: not KEY=VALUE"),
        ("STRAIT_SUBNET=10.244.1.1/24\nSTRAIT_MTU=big\n", "line 2: STRAIT_MTU \"big\" is not a number"),
        ("STRAIT_SUBNET=10.244.1.1/24\nSTRAIT_IPMASQ=yes\n", "line 2: STRAIT_IPMASQ \"yes\" is not true or false"),
        ("FLANNEL_SUBNET=10.244.1.1/24\nFLANNEL_MTU=big\n", "line 2: FLANNEL_MTU \"big\" is not a number"),
        ("STRAIT_NETWORK=10.244.0.0/16\n", "no subnet (STRAIT_SUBNET, STRAIT_IPV6_SUBNET or their FLANNEL_ forms)"),
    ])
    func badFilesAreRefusedWithTheLine(text: String, message: String) {
        #expect(throws: SubnetFile.ParseError.self) { try SubnetFile(parsing: text) }
        do { _ = try SubnetFile(parsing: text) } catch { #expect(error.description == message) }
    }
}

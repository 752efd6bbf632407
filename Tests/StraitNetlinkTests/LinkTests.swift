#if canImport(Glibc)
import Glibc
#endif
import StraitNetlink
import StraitTestSupport
import Testing

@Suite("Links")
struct LinkTests {
    @Test("veth pair with its peer in another namespace; deleting one end removes both")
    func vethAcrossNamespaces() async throws {
        try await withTestNamespaces(2) { namespaces in
            let (here, there) = (namespaces[0], namespaces[1])
            let socket = try NetlinkSocket(namespace: here.name)
            try socket.addLink(.veth("va", peer: "vb", peerNamespace: there.name))

            let local = try #require(try here.linkJSON("va"))
            #expect((local["linkinfo"] as? [String: Any])?["info_kind"] as? String == "veth")
            let peer = try #require(try there.linkJSON("vb"))
            #expect((peer["linkinfo"] as? [String: Any])?["info_kind"] as? String == "veth")
            #expect(try here.linkJSON("vb") == nil)
            #expect(try socket.link(named: "va").kind == "veth")

            try socket.deleteLink(named: "va")
            #expect(try here.linkJSON("va") == nil)
            #expect(try there.linkJSON("vb") == nil)
        }
    }

    @Test("veth pair within one namespace, created up with MTU and MAC")
    func vethWithSettings() async throws {
        try await withTestNamespaces { namespaces in
            let namespace = namespaces[0]
            let socket = try NetlinkSocket(namespace: namespace.name)
            try socket.addLink(LinkSpec(name: "v0", kind: .veth(peer: "v1"), mtu: 1400,
                                        mac: "02:11:22:33:44:55", up: true))
            let link = try #require(try namespace.linkJSON("v0"))
            #expect(link["mtu"] as? Int == 1400)
            #expect(link["address"] as? String == "02:11:22:33:44:55")
            #expect((link["flags"] as? [String])?.contains("UP") == true)
            #expect(try namespace.linkJSON("v1") != nil)
            try socket.deleteLink(named: "v1")
            #expect(try namespace.linkJSON("v0") == nil)
        }
    }

    @Test("bridge; enslaving a veth end to it as master and freeing it again")
    func bridgeAndMaster() async throws {
        try await withTestNamespaces { namespaces in
            let namespace = namespaces[0]
            let socket = try NetlinkSocket(namespace: namespace.name)
            try socket.addLink(.bridge("br0"))
            try socket.addLink(.veth("d0", peer: "d0p"))
            let bridgeInfo = (try namespace.linkJSON("br0"))?["linkinfo"] as? [String: Any]
            #expect(bridgeInfo?["info_kind"] as? String == "bridge")

            try socket.setLink("d0", master: "br0")
            #expect((try namespace.linkJSON("d0"))?["master"] as? String == "br0")
            let bridge = try socket.link(named: "br0")
            #expect(bridge.kind == "bridge")
            #expect(try socket.link(named: "d0").masterIndex == bridge.index)

            try socket.setLink("d0", master: nil)
            #expect((try namespace.linkJSON("d0"))?["master"] == nil)
            #expect(try socket.link(named: "d0").masterIndex == nil)

            try socket.deleteLink(named: "d0")
            try socket.deleteLink(named: "br0")
            #expect(try namespace.linkNames() == ["lo"])
        }
    }

    @Test("dummy: created where the kernel has the driver, else a clear EOPNOTSUPP naming the link")
    func dummy() async throws {
        try await withTestNamespaces { namespaces in
            let namespace = namespaces[0]
            let socket = try NetlinkSocket(namespace: namespace.name)
            // Ask the real tool whether this kernel can make a dummy, then expect the same from StraitNetlink.
            let supported = try namespace.output(["ip", "link", "add", "probe0", "type", "dummy"]).succeeded
            if supported {
                try namespace.run(["ip", "link", "del", "probe0"])
                try socket.addLink(.dummy("d0"))
                let link = try #require(try namespace.linkJSON("d0"))
                #expect((link["linkinfo"] as? [String: Any])?["info_kind"] as? String == "dummy")
                #expect(try socket.link(named: "d0").kind == "dummy")
                try socket.deleteLink(named: "d0")
                #expect(try namespace.linkJSON("d0") == nil)
            } else {
                let error = try #require(throws: NetlinkError.self) { try socket.addLink(.dummy("d0")) }
                #expect(error.errno == EOPNOTSUPP)
                #expect(error.description.hasPrefix("add link \"d0\":"))
                #expect(try namespace.linkJSON("d0") == nil)
            }
        }
    }

    @Test("vxlan with VNI, port, local address, underlay device, learning off and MTU")
    func vxlan() async throws {
        try await withTestNamespaces { namespaces in
            let namespace = namespaces[0]
            let socket = try NetlinkSocket(namespace: namespace.name)
            try socket.addTestDevice("u0")
            try socket.addAddress("192.168.50.1/24", to: "u0")
            try socket.addLink(.vxlan("vx0", VXLANSpec(vni: 42, port: 8472, local: "192.168.50.1",
                                                       device: "u0", learning: false), mtu: 1450))

            let link = try #require(try namespace.linkJSON("vx0"))
            #expect(link["mtu"] as? Int == 1450)
            let info = try #require(link["linkinfo"] as? [String: Any])
            #expect(info["info_kind"] as? String == "vxlan")
            let data = try #require(info["info_data"] as? [String: Any])
            #expect(data["id"] as? Int == 42)
            #expect(data["port"] as? Int == 8472)
            #expect(data["local"] as? String == "192.168.50.1")
            #expect(data["link"] as? String == "u0")
            #expect(data["learning"] as? Bool == false)

            try socket.addLink(.vxlan("vx1", VXLANSpec(vni: 7, learning: true)))
            let learning = try #require(try namespace.linkJSON("vx1"))
            let learningData = (learning["linkinfo"] as? [String: Any])?["info_data"] as? [String: Any]
            #expect(learningData?["id"] as? Int == 7)
            #expect(learningData?["port"] as? Int == 4789)
            #expect(learningData?["learning"] as? Bool == true)

            try socket.deleteLink(named: "vx0")
            try socket.deleteLink(named: "vx1")
            #expect(try namespace.linkJSON("vx0") == nil)
        }
    }

    @Test("up and down, MTU and MAC on an existing device")
    func changeSettings() async throws {
        try await withTestNamespaces { namespaces in
            let namespace = namespaces[0]
            let socket = try NetlinkSocket(namespace: namespace.name)
            try socket.addTestDevice("d0", up: false)
            #expect(try socket.link(named: "d0").up == false)

            try socket.setLink("d0", up: true)
            #expect(((try namespace.linkJSON("d0"))?["flags"] as? [String])?.contains("UP") == true)
            #expect(try socket.link(named: "d0").up)

            try socket.setLink("d0", mtu: 9000)
            try socket.setLink("d0", mac: "02:aa:bb:cc:dd:ee")
            let link = try #require(try namespace.linkJSON("d0"))
            #expect(link["mtu"] as? Int == 9000)
            #expect(link["address"] as? String == "02:aa:bb:cc:dd:ee")
            let info = try socket.link(named: "d0")
            #expect(info.mtu == 9000)
            #expect(info.mac == "02:aa:bb:cc:dd:ee")

            try socket.setLink("d0", up: false)
            #expect(((try namespace.linkJSON("d0"))?["flags"] as? [String])?.contains("UP") == false)
            #expect(try socket.link(named: "d0").up == false)
            #expect(try namespace.linkJSON("d0")?["mtu"] as? Int == 9000, "bringing it down keeps the MTU")
        }
    }

    @Test("listing links agrees with ip link show")
    func listLinks() async throws {
        try await withTestNamespaces { namespaces in
            let namespace = namespaces[0]
            let socket = try NetlinkSocket(namespace: namespace.name)
            #expect(try socket.links().map(\.name) == ["lo"], "a socket in a test namespace sees only its devices")
            try socket.addLink(.vxlan("a0", VXLANSpec(vni: 9)))
            try socket.addLink(.bridge("b0"))
            try socket.addLink(.veth("c0", peer: "c1"))

            let listed = try socket.links()
            #expect(Set(listed.map(\.name)) == Set(try namespace.linkNames()))
            #expect(Set(listed.map(\.name)) == ["lo", "a0", "b0", "c0", "c1"])
            let byName = Dictionary(uniqueKeysWithValues: listed.map { ($0.name, $0) })
            #expect(byName["a0"]?.kind == "vxlan")
            #expect(byName["b0"]?.kind == "bridge")
            #expect(byName["c1"]?.kind == "veth")
            #expect(byName["lo"]?.kind == nil)
            for entry in try namespace.json(["ip", "-j", "link", "show"]) {
                let name = try #require(entry["ifname"] as? String)
                #expect(byName[name]?.index == Int32(entry["ifindex"] as? Int ?? -1))
                #expect(byName[name]?.mtu == UInt32(entry["mtu"] as? Int ?? -1))
            }
        }
    }
}

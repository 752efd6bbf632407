import Foundation
import StraitModel
import Testing

@testable import StraitCNI

/// strait-cni's own JSON reader and writer: what they accept and refuse, that what they write reads
/// back equal (and as Foundation reads it), and that files the Foundation coders wrote still read.
@Suite struct JSONTests {
    func parse(_ text: String) throws -> JSONValue { try JSONReader.parse(Array(text.utf8)) }

    @Test func readsEveryKindOfValue() throws {
        let value = try parse(#" {"a": [1, -2.5, 3e2, true, false, null], "#
                              + #""b": {"c": "d\"\\\/\b\f\n\r\t\u00e9\ud83d\ude00"}} "#)
        #expect(value == .object([
            "a": .array([.number(1), .number(-2.5), .number(300), .bool(true), .bool(false), .null]),
            "b": .object(["c": .string("d\"\\/\u{08}\u{0C}\n\r\té😀")]),
        ]))
        #expect(try parse("\"caf\u{e9}\"") == .string("café"))
        #expect(try parse("0") == .number(0))
    }

    @Test(arguments: [
        "", " ", "{", "[1,]", "{\"a\":1,}", "{\"a\" 1}", "{a:1}", "[1 2]", "01", "-", "1.", "1e", ".5", "+1",
        "tru", "nul", "\"abc", "\"\\x\"", "\"\\u12\"", "\"\\ud800\"", "\"\\udc00\"", "\"a\u{01}b\"", "1e400",
        "{} {}", "[1] x", "NaN",
    ])
    func refusesWhatIsNotJSON(_ text: String) {
        #expect(throws: JSONReader.SyntaxError.self) { try parse(text) }
    }

    @Test func refusesInvalidUTF8AndDeepNesting() {
        #expect(throws: JSONReader.SyntaxError.self) { try JSONReader.parse([0x22, 0xff, 0xfe, 0x22]) }
        let deep = String(repeating: "[", count: 600) + String(repeating: "]", count: 600)
        #expect(throws: JSONReader.SyntaxError.self) { try parse(deep) }
        let fine = String(repeating: "[", count: 100) + String(repeating: "]", count: 100)
        #expect((try? parse(fine)) != nil)
    }

    @Test func writesPrettyPrintedSortedAndReadsBack() throws {
        let value = JSONValue.object([
            "z": .array([.number(1400), .number(1.5), .string("a/b \"q\" \u{01}\n")]),
            "a": .object([:]), "m": .array([]), "b": .bool(true), "n": .null,
        ])
        let text = JSONWriter.prettyPrinted(value)
        #expect(text == """
        {
          "a" : {},
          "b" : true,
          "m" : [],
          "n" : null,
          "z" : [
            1400,
            1.5,
            "a/b \\"q\\" \\u0001\\n"
          ]
        }
        """)
        #expect(try parse(text) == value)
        let foundation = try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any]
        #expect((foundation?["z"] as? [Any])?.last as? String == "a/b \"q\" \u{01}\n")
    }

    /// Every character JSON escapes, a control character without a short escape, and text of several bytes
    /// a character, which is written as it is.
    @Test func writesEscapesAndMultibyteText() throws {
        let text = "\u{08}\u{0C}\t\r\n\"\\/\u{1F}\u{7F} caf\u{e9} \u{1F600}"
        let written = JSONWriter.prettyPrinted(.array([.string(text)]))
        #expect(written == "[\n  \"\\b\\f\\t\\r\\n\\\"\\\\/\\u001f\u{7F} caf\u{e9} \u{1F600}\"\n]")
        #expect(try parse(written) == .array([.string(text)]))
    }

    @Test func configFieldErrorsNameTheField() {
        func code(_ text: String) -> (CNIErrorCode, String)? {
            do { _ = try NetworkConfig.decode(Array(text.utf8)); return nil } catch { return (error.code, error.msg) }
        }
        let base = #""cniVersion":"1.1.0","name":"n","type":"strait-cni""#
        #expect(code("{ not json")?.0 == .decodeFailure)
        #expect(code("[1]")?.0 == .invalidNetworkConfig)
        #expect(code(#"{"cniVersion":"1.1.0","type":"strait-cni"}"#)?.1 == "the network configuration has no name")
        #expect(code("{\(base),\"mtu\":\"big\"}")?.1 == "field mtu has the wrong type")
        #expect(code("{\(base),\"mtu\":1400.5}")?.1 == "field mtu has the wrong type")
        #expect(code("{\(base),\"name\":null}")?.1 == "field name is null")
        #expect(code("{\(base),\"runtimeConfig\":{\"portMappings\":[{\"hostPort\":\"80\",\"containerPort\":80}]}}")?.1
                == "field runtimeConfig.portMappings.[0].hostPort has the wrong type")
        #expect(code("{\(base),\"cni.dev/valid-attachments\":[{\"containerID\":\"c\"}]}")?.1
                == "the network configuration has no cni.dev/valid-attachments.[0].ifname")
        #expect(code("{\(base),\"subnet\":7}")?.1 == "field subnet has the wrong type")
    }

    @Test func configReadsEveryFieldAndNullAsAbsent() throws {
        let config = try NetworkConfig.decode(Array(#"""
        {"cniVersion":"1.0.0","name":"n","type":"strait-cni","subnet":["10.1.0.0/24","fd00::/64"],"bridge":null,
         "mtu":1450,"ipMasq":true,"hairpinMode":false,"isDefaultGateway":false,"dns":{"nameservers":["10.96.0.10"]},
         "runtimeConfig":{"portMappings":[{"hostPort":8080,"containerPort":80,"protocol":"udp"}],"ips":["10.1.0.9"],
         "mac":"0a:58:0a:01:00:09"},"cni.dev/attachments":[{"containerID":"c","ifname":"eth0"}],
         "prevResult":{"cniVersion":"1.0.0","interfaces":[{"name":"eth0","sandbox":"/run/netns/p"}],
         "ips":[{"address":"10.1.0.9/24","interface":0,"version":"4"}],"routes":[{"dst":"0.0.0.0/0"}]}}
        """#.utf8))
        #expect(config.subnetList == ["10.1.0.0/24", "fd00::/64"])
        #expect(config.bridge == nil && config.mtu == 1450 && config.ipMasq == true && config.hairpinMode == false)
        #expect(config.isDefaultGateway == false && config.dns?["nameservers"] == .array([.string("10.96.0.10")]))
        #expect(config.runtimeConfig?.portMappings == [PortMapping(hostPort: 8080, containerPort: 80, protocol: "udp")])
        #expect(config.runtimeConfig?.ips == ["10.1.0.9"] && config.runtimeConfig?.mac == "0a:58:0a:01:00:09")
        #expect(config.validAttachments?.map(\.containerID) == ["c"])
        #expect(config.validAttachments?.map(\.ifname) == ["eth0"])
        #expect(config.prevResult?.ips?.first?.version == "4" && config.prevResult?.routes?.first?.gw == nil)
        let result = try #require(config.prevResult)
        #expect(try CNIResult(json: parse(JSONWriter.prettyPrinted(result.json))) == result)
    }

    /// A book as the Foundation coders wrote it (before this reader: slashes escaped, an empty array
    /// over three lines) still reads, and is written back with the same content.
    @Test func aLeaseBookFoundationWroteStillReads() throws {
        let written = #"""
        {
          "lastReserved" : {
            "10.244.1.0\/24" : "10.244.1.3",
            "fd00:1::\/64" : "fd00:1::2"
          },
          "leases" : [
            {
              "address" : "10.244.1.2",
              "containerID" : "a",
              "ifname" : "eth0",
              "masquerade" : true,
              "portMappings" : [
                {
                  "containerPort" : 80,
                  "hostPort" : 8080,
                  "protocol" : "tcp"
                }
              ],
              "subnet" : "10.244.1.0\/24"
            },
            {
              "address" : "10.244.1.3",
              "containerID" : "b",
              "ifname" : "eth0",
              "subnet" : "10.244.1.0\/24"
            }
          ]
        }
        """#
        let book = try IPAM.LeaseBook(text: written)
        #expect(book.leases.map(\.address.description) == ["10.244.1.2", "10.244.1.3"])
        #expect(book.leases.map(\.subnet.description) == ["10.244.1.0/24", "10.244.1.0/24"])
        #expect(book.leases.first?.portMappings == [PortMapping(hostPort: 8080, containerPort: 80, protocol: "tcp")])
        #expect(book.leases.first?.masquerade == true && book.leases.last?.masquerade == nil)
        #expect(book.lastReserved["10.244.1.0/24"]?.description == "10.244.1.3")
        #expect(try parse(book.text) == parse(written))
        let empty = try IPAM.LeaseBook(text: "{\n  \"lastReserved\" : {\n\n  },\n  \"leases\" : [\n\n  ]\n}")
        #expect(empty == IPAM.LeaseBook())
    }

    @Test(arguments: [
        "{}", #"{"leases":[]}"#, #"{"lastReserved":{},"leases":{}}"#,
        #"{"lastReserved":{"10.0.0.0/24":"10.0.0.300"},"leases":[]}"#,
        #"{"lastReserved":{},"leases":[{"address":"10.0.0.2","containerID":"a","ifname":"eth0","subnet":"x"}]}"#,
    ])
    func aBrokenLeaseBookIsRefused(_ text: String) {
        #expect(throws: IPAM.LeaseBook.ReadError.self) { try IPAM.LeaseBook(text: text) }
    }
}

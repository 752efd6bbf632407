import Foundation
import StraitNFT
import StraitTestSupport
import Testing

@Suite("StraitNFT packets")
struct PacketTests {
    @Test("a dnat rule committed through StraitNFT sends a client's 10.99.0.10:80 to the server's 8080")
    func dnatRedirectsTraffic() async throws {
        try await withTestNamespaces(2) { namespaces in
            let (client, server) = (namespaces[0], namespaces[1])
            try client.connect(to: server, localName: "veth-c", remoteName: "veth-s")
            try client.run(["ip", "addr", "add", "10.99.0.1/24", "dev", "veth-c"])
            try server.run(["ip", "addr", "add", "10.99.0.2/24", "dev", "veth-s"])

            let table = Table(.ip, "strait")
            let output = Chain(table: table, name: "nat-output",
                               base: BaseChain(type: .nat, hook: .output, priority: Priority.dstnat))
            let service = Chain(table: table, name: "svc-web")
            let services = NFTSet(table: table, name: "service-ips",
                                  keyType: [.ipv4Addr, .inetProto, .inetService], dataType: .verdict)
            var tx = Transaction()
            tx.add(table)
            tx.add(output)
            tx.add(service)
            tx.add(services)
            tx.add([Element("10.99.0.10", .proto(.tcp), .port(80), verdict: .goto("svc-web"))], to: services)
            tx.add(Rule(in: output, .vmap([.ipDaddr, .l4proto, .thDport], map: "service-ips")))
            tx.add(Rule(in: service, .match(l4proto: .tcp), .dnat(to: "10.99.0.2", port: 8080)))
            try NFTConnection(namespace: client.name).commit(tx)

            // The server runs inside its namespace; the harness kills it when it deletes the namespace.
            try server.startTCPServer(port: 8080, reply: "hello from 8080")

            var body = ""
            for _ in 0..<50 {
                let result = try client.output(["nc", "-w", "2", "10.99.0.10", "80"])
                if result.succeeded { body = result.stdout; break }
                try await Task.sleep(for: .milliseconds(100))
            }
            #expect(body == "hello from 8080\n")
            // Without the rule, nothing listens on 10.99.0.10.
            var flush = Transaction()
            flush.delete(table)
            try NFTConnection(namespace: client.name).commit(flush)
            #expect(try client.tcpRequest("10.99.0.10", 80, timeout: 1) == nil)
        }
    }
}

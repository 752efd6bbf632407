import ArgumentParser
import Foundation
import StraitManifest
import StraitModel
import StraitProxy
import StraitSources

/// `strait get services|endpointslices|nodes [-n NS | -A] [-o yaml|json]`: the stored objects, as a
/// short table like kubectl's by default. `strait get subnets` lists the overlay's node subnets.
struct GetCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "get", abstract: "List the Services, EndpointSlices, Nodes or node subnets in the store.")

    @Argument(help: "services (svc), endpointslices, nodes, or subnets.")
    var kind: String

    @Option(name: .shortAndLong, help: "The namespace (default: default).")
    var namespace: String = "default"

    @Flag(name: [.customShort("A"), .customLong("all-namespaces")], help: "Every namespace.")
    var allNamespaces = false

    @Option(name: .shortAndLong, help: "Output format: yaml or json (default: a table).")
    var output: String?

    @OptionGroup var storeOptions: ObjectStoreOptions

    func run() async throws {
        if ["subnet", "subnets"].contains(kind.lowercased()) {
            let store = try await storeOptions.open()
            do {
                let table = try await SubnetListing.render(store)
                await store.close()
                print(table, terminator: "")
            } catch {
                await store.close()
                throw error
            }
            return
        }
        let kind = try ObjectKindArgument.parse(kind)
        if let output, output != "yaml", output != "json" {
            throw ValidationError("--output must be yaml or json, not \(output)")
        }
        let store = try await storeOptions.open()
        let objects: [KubeObject]
        do {
            objects = try await store.list(kind, namespace: allNamespaces ? nil : namespace)
            await store.close()
        } catch {
            await store.close()
            throw error
        }
        switch output {
        case "yaml":
            print(try Manifest.yaml(objects), terminator: "")
        case "json":
            print(String(decoding: try Manifest.json(objects.count == 1 ? objects : objects), as: UTF8.self))
        default:
            if objects.isEmpty {
                let scope = allNamespaces ? "" : " in \(namespace) namespace"
                FileHandle.standardError.write(Data("No resources found\(scope).\n".utf8))
                return
            }
            print(ObjectTable.render(objects, showNamespace: allNamespaces), terminator: "")
        }
    }
}

/// Kind names as kubectl accepts them.
enum ObjectKindArgument {
    static func parse(_ text: String) throws -> ProxyObjectID.Kind {
        switch text.lowercased() {
        case "service", "services", "svc": return .service
        case "endpointslice", "endpointslices", "endpointslices.discovery.k8s.io",
             "endpointslice.discovery.k8s.io": return .endpointSlice
        case "node", "nodes", "no": return .node
        default: throw ValidationError("unknown kind \(text): use services, endpointslices or nodes")
        }
    }
}

/// kubectl's default columns, without AGE.
enum ObjectTable {
    static func render(_ objects: [KubeObject], showNamespace: Bool) -> String {
        var rows: [[String]] = []
        var header: [String] = []
        for object in objects {
            var row: [String]
            switch object {
            case .service(let service):
                header = ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)"]
                let external = service.spec.externalIPs ?? []
                let ingress = (service.status?.loadBalancer?.ingress ?? []).compactMap { $0.ip ?? $0.hostname }
                let externalText = (ingress + external).isEmpty
                    ? (service.type == .loadBalancer ? "<pending>" : "<none>") : (ingress + external).joined(separator: ",")
                let ports = service.ports.map { port in
                    (port.nodePort.map { "\(port.port):\($0)" } ?? "\(port.port)") + "/\(port.transportProtocol.rawValue)"
                }
                row = [service.metadata.name, service.type.rawValue,
                       (service.spec.clusterIPs ?? service.spec.clusterIP.map { [$0] } ?? []).joined(separator: ","),
                       externalText, ports.isEmpty ? "<none>" : ports.joined(separator: ",")]
            case .endpointSlice(let slice):
                header = ["NAME", "ADDRESSTYPE", "PORTS", "ENDPOINTS"]
                let ports = (slice.ports ?? []).map { $0.port.map(String.init) ?? "<unset>" }
                let addresses = (slice.endpoints ?? []).flatMap(\.addresses)
                let shown = addresses.prefix(3).joined(separator: ",") + (addresses.count > 3 ? " + \(addresses.count - 3) more..." : "")
                row = [slice.metadata.name, slice.addressType.rawValue,
                       ports.isEmpty ? "<unset>" : ports.joined(separator: ","), addresses.isEmpty ? "<unset>" : shown]
            case .node(let node):
                header = ["NAME", "ZONE"]
                row = [node.metadata.name, node.metadata.labels["topology.kubernetes.io/zone"] ?? "<none>"]
            }
            if showNamespace { row.insert(object.metadata.namespace ?? "", at: 0) }
            rows.append(row)
        }
        if showNamespace { header.insert("NAMESPACE", at: 0) }
        let all = [header] + rows
        let widths = header.indices.map { column in all.map { $0[column].count }.max() ?? 0 }
        return all.map { row in
            row.enumerated().map { index, cell in
                index == row.count - 1 ? cell : cell.padding(toLength: widths[index] + 3, withPad: " ", startingAt: 0)
            }.joined()
        }.joined(separator: "\n") + "\n"
    }
}

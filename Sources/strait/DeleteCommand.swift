import ArgumentParser
import StraitModel
import StraitProxy
import StraitSources

/// `strait delete service|endpointslice NAME -n NS`: removes one object from the store.
struct DeleteCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "delete", abstract: "Delete a Service, EndpointSlice or Node from the store.")

    @Argument(help: "service (svc), endpointslice, or node.")
    var kind: String

    @Argument(help: "The object's name.")
    var name: String

    @Option(name: .shortAndLong, help: "The namespace (default: default).")
    var namespace: String = "default"

    @OptionGroup var storeOptions: ObjectStoreOptions

    func run() async throws {
        let kind = try ObjectKindArgument.parse(kind)
        let id = ProxyObjectID(kind: kind, namespace: kind == .node ? "" : namespace, name: name)
        let store = try await storeOptions.open()
        let deleted: Bool
        do {
            deleted = try await store.delete(id)
            await store.close()
        } catch {
            await store.close()
            throw error
        }
        let plural = switch kind {
        case .service: "services"
        case .endpointSlice: "endpointslices.discovery.k8s.io"
        case .node: "nodes"
        }
        guard deleted else { throw userFailure("Error from store: \(plural) \"\(name)\" not found") }
        let singular = switch kind {
        case .service: "service"
        case .endpointSlice: "endpointslice.discovery.k8s.io"
        case .node: "node"
        }
        print("\(singular) \"\(name)\" deleted")
    }
}

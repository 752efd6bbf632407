import ArgumentParser
import Foundation
import StraitManifest
import StraitModel
import StraitProxy
import StraitSources

/// `strait apply -f FILE`: validates every object in a YAML or JSON manifest (`-f -` reads
/// standard input) and, only if all are good, writes them to the store, printing what changed
/// as kubectl does (`service/web configured`).
struct ApplyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "apply",
        abstract: "Write Services, EndpointSlices and Nodes from a manifest into the store.")

    @Option(name: .shortAndLong, help: "The manifest: a YAML stream or JSON; - for standard input.")
    var filename: String

    @Option(name: .customLong("service-cluster-ip-range"),
            help: "The API server's service CIDRs, one per family (10.96.0.0/12,fd00:10:96::/112): a clusterIP outside them is refused. Without it cluster IPs are not range-checked.")
    var serviceClusterIPRange: String?

    @Option(name: .customLong("service-node-port-range"),
            help: "The API server's node port range: a nodePort or healthCheckNodePort outside it is refused. (default: 30000-32767)")
    var serviceNodePortRange: String?

    @OptionGroup var storeOptions: ObjectStoreOptions

    func run() async throws {
        let data: Data
        if filename == "-" {
            data = FileHandle.standardInput.readDataToEndOfFile()
        } else {
            guard let contents = FileManager.default.contents(atPath: filename) else {
                throw ValidationError("cannot read \(filename)")
            }
            data = contents
        }
        let ranges: ClusterRanges
        do {
            ranges = try ClusterRanges(serviceCIDRs: serviceClusterIPRange, nodePorts: serviceNodePortRange)
        } catch {
            throw ValidationError("\(error)")
        }
        let objects: [KubeObject]
        do {
            objects = try Manifest.decode(data)
        } catch {
            throw userFailure("error: \(filename): \(error)")
        }
        let store = try await storeOptions.open()
        do {
            let results = try await store.apply(objects, ranges: ranges)
            await store.close()
            for (object, outcome) in results { print("\(ObjectStore.kubectlName(object)) \(outcome.rawValue)") }
        } catch let invalid as ObjectStore.Invalid {
            await store.close()
            throw userFailure(invalid.problems.map { "error: \($0)" }.joined(separator: "\n")
                                 + "\nnothing was written")
        } catch {
            await store.close()
            throw error
        }
    }
}

/// Prints a message already worded for the user on standard error; throw the result to exit 1.
func userFailure(_ message: String) -> ExitCode {
    FileHandle.standardError.write(Data((message + "\n").utf8))
    return ExitCode.failure
}

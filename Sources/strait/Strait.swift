import ArgumentParser
import StraitModel

/// `strait`: the node's service-networking dataplane. Each subcommand is one job; the logic lives in libraries.
@main
struct Strait: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "strait",
        abstract: "Service networking for a Kubernetes node: proxy, overlay and standalone objects.",
        version: StraitVersion.current,
        subcommands: [ProxyCommand.self, OverlayCommand.self, ApplyCommand.self, GetCommand.self, DeleteCommand.self]
    )
}

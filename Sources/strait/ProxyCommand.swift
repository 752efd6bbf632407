import ArgumentParser

/// `strait proxy` (being written: this placeholder only keeps the command tree compiling).
struct ProxyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "proxy", abstract: "Not built yet.")

    func run() async throws {
        throw ValidationError("strait proxy is not built yet")
    }
}

import ArgumentParser

/// `strait get` (being written: this placeholder only keeps the command tree compiling).
struct GetCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "get", abstract: "Not built yet.")

    func run() async throws {
        throw ValidationError("strait get is not built yet")
    }
}

import ArgumentParser

/// `strait apply` (being written: this placeholder only keeps the command tree compiling).
struct ApplyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "apply", abstract: "Not built yet.")

    func run() async throws {
        throw ValidationError("strait apply is not built yet")
    }
}

import ArgumentParser

/// `strait delete` (being written: this placeholder only keeps the command tree compiling).
struct DeleteCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "delete", abstract: "Not built yet.")

    func run() async throws {
        throw ValidationError("strait delete is not built yet")
    }
}

import ArgumentParser

/// `strait overlay` (being written: this placeholder only keeps the command tree compiling).
struct OverlayCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "overlay", abstract: "Not built yet.")

    func run() async throws {
        throw ValidationError("strait overlay is not built yet")
    }
}

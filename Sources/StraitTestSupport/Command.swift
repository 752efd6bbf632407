import Foundation

/// What a finished command printed and how it exited.
public struct CommandOutput: Sendable {
    public let status: Int32
    public let stdout: String
    public let stderr: String

    public var succeeded: Bool { status == 0 }
}

/// A command the test harness could not run, or that failed where success was required.
public struct CommandFailure: Error, CustomStringConvertible {
    public let arguments: [String]
    public let output: CommandOutput?
    public let reason: String

    public init(arguments: [String], output: CommandOutput?, reason: String) {
        self.arguments = arguments
        self.output = output
        self.reason = reason
    }

    public var description: String {
        var text = "`\(arguments.joined(separator: " "))` \(reason)"
        if let output, !output.stderr.isEmpty { text += ": \(output.stderr.trimmingCharacters(in: .whitespacesAndNewlines))" }
        return text
    }
}

/// Runs tools (`ip`, `nft`, `ping`, …) for tests and returns what they printed.
public enum Command {
    /// Runs `arguments` (the first is looked up in PATH) and returns its output, whatever its exit status.
    @discardableResult
    public static func output(_ arguments: [String], stdin: String? = nil,
                              environment: [String: String]? = nil) throws -> CommandOutput {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = arguments
        if let environment { process.environment = environment }
        let outPipe = Pipe(), errPipe = Pipe(), inPipe = Pipe()
        process.standardOutput = outPipe
        process.standardError = errPipe
        process.standardInput = inPipe
        do { try process.run() } catch {
            throw CommandFailure(arguments: arguments, output: nil, reason: "could not start (\(error))")
        }
        if let stdin { inPipe.fileHandleForWriting.write(Data(stdin.utf8)) }
        try? inPipe.fileHandleForWriting.close()
        // Drain stderr on another thread so neither pipe fills up and blocks the child.
        let errData = ErrorDrain(errPipe.fileHandleForReading)
        let outData = outPipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return CommandOutput(status: process.terminationStatus,
                             stdout: String(decoding: outData, as: UTF8.self),
                             stderr: String(decoding: errData.wait(), as: UTF8.self))
    }

    /// Runs `arguments` and throws unless it exits 0; returns its standard output.
    @discardableResult
    public static func run(_ arguments: [String], stdin: String? = nil) throws -> String {
        let result = try output(arguments, stdin: stdin)
        guard result.succeeded else {
            throw CommandFailure(arguments: arguments, output: result, reason: "exited \(result.status)")
        }
        return result.stdout
    }
}

/// Reads a pipe to its end on a background queue.
private final class ErrorDrain: @unchecked Sendable {
    private var data = Data()
    private let done = DispatchSemaphore(value: 0)

    init(_ handle: FileHandle) {
        DispatchQueue.global().async {
            self.data = handle.readDataToEndOfFile()
            self.done.signal()
        }
    }

    func wait() -> Data {
        done.wait()
        return data
    }
}

import Logging
import ServiceLifecycle
import UnixSignals

/// One long-running part of a daemon (the proxy's sync loop, its metrics server, the overlay
/// agent) as a swift-service-lifecycle `Service`: it stops when the group shuts down gracefully
/// or is cancelled, and when it fails or ends on its own the error names it.
public struct DaemonPart: Service, CustomStringConvertible {
    public let name: String
    private let body: @Sendable () async throws -> Void

    /// `body` runs until cancelled; returning or throwing before that ends the whole daemon.
    public init(_ name: String, _ body: @escaping @Sendable () async throws -> Void) {
        self.name = name
        self.body = body
    }

    public var description: String { name }

    public func run() async throws {
        let (name, body) = (self.name, self.body)
        do {
            try await cancelWhenGracefulShutdown {
                do {
                    try await body()
                } catch {
                    if Task.isCancelled { return }  // a part may throw CancellationError when stopped
                    throw error
                }
                if !Task.isCancelled { throw DaemonPartFailure.Ended() }
            }
        } catch {
            throw DaemonPartFailure(part: name, underlying: error)
        }
    }
}

/// A daemon's part failed or ended while it should have been running.
public struct DaemonPartFailure: Error, CustomStringConvertible {
    public var part: String
    public var underlying: any Error

    public var description: String { "\(part) failed: \(underlying)" }

    struct Ended: Error, CustomStringConvertible {
        var description: String { "it ended on its own" }
    }
}

/// Runs a daemon's parts in one `ServiceGroup`: all start together; SIGTERM or SIGINT (when
/// `handleSignals`) is logged and shuts them down gracefully, as does cancelling the calling task;
/// the first part that fails or ends stops the others, its failure is logged naming the part, and
/// `run` throws it. Equivalent: a supervisor that sends every child SIGTERM when one exits.
public enum Daemon {
    public static func run(_ parts: [DaemonPart], handleSignals: Bool, logger: Logger) async throws {
        var services = parts.map { ServiceGroupConfiguration.ServiceConfiguration(service: $0) }
        if handleSignals {
            services.append(.init(service: TerminationSignals(logger: logger),
                                  successTerminationBehavior: .gracefullyShutdownGroup))
        }
        let group = ServiceGroup(configuration: ServiceGroupConfiguration(services: services, logger: logger))
        do {
            try await group.run()
        } catch let failure as DaemonPartFailure {
            logger.error("\(failure)")
            throw failure
        }
    }
}

/// Waits for SIGTERM or SIGINT, logs which one, and returns: the group then shuts down gracefully.
/// Returns at once too when the group stops for another reason.
struct TerminationSignals: Service, CustomStringConvertible {
    let logger: Logger
    var description: String { "termination signals" }

    func run() async {
        let signals = await UnixSignalsSequence(trapping: .sigterm, .sigint)
        logger.debug("stopping gracefully on SIGTERM or SIGINT")
        await cancelWhenGracefulShutdown {
            for await signal in signals {
                logger.info("\(signal): stopping")
                return
            }
        }
    }
}

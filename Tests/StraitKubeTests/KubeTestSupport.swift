import Foundation
import Logging
import NIOConcurrencyHelpers
import StraitDaemon
import StraitKube
import StraitModel
import StraitProxy
import StraitSources
import StraitTestSupport
import Testing

/// Everything a source sent, collected in the background, and what it logged.
final class SourceRecorder: Sendable {
    let events = NIOLockedValueBox<[ProxySourceEvent]>([])
    let lines = NIOLockedValueBox<[String]>([])
    private let task = NIOLockedValueBox<Task<Void, Never>?>(nil)

    /// Every line, debug included, in the daemons' format (`… test warning: message`).
    var log: Logger {
        Logger(label: "test") { [lines] label in
            DaemonLogHandler(label: label, logLevel: .debug) { line in lines.withLockedValue { $0.append(line) } }
        }
    }

    func record(_ source: any ProxySource) {
        let stream = source.events()
        task.withLockedValue {
            $0 = Task { [events] in
                do {
                    for try await event in stream { events.withLockedValue { $0.append(event) } }
                } catch {
                    events.withLockedValue { _ in }
                }
            }
        }
    }

    func stop() { task.withLockedValue { $0?.cancel() } }

    var snapshot: [ProxySourceEvent] { events.withLockedValue { $0 } }
    var logged: [String] { lines.withLockedValue { $0 } }

    /// The objects a consumer holds after applying every event so far.
    var state: [ProxyObjectID: KubeObject] {
        var state: [ProxyObjectID: KubeObject] = [:]
        for event in snapshot {
            switch event {
            case .replaceAll(let objects):
                state = [:]
                for object in objects { state[ProxyObjectID(object)] = object }
            case .upsert(let object): state[ProxyObjectID(object)] = object
            case .delete(let id): state[id] = nil
            }
        }
        return state
    }
}

/// Polls `check` every 100 ms until it holds; a generous bound (a loaded 2-core CI machine) only
/// keeps a broken test from hanging. Records an issue when it never holds.
@discardableResult
func eventually(_ what: String, bound: Duration = .seconds(120), _ check: () throws -> Bool) async throws -> Bool {
    let deadline = ContinuousClock.now + bound
    while ContinuousClock.now < deadline {
        if try check() { return true }
        try await Task.sleep(for: .milliseconds(100))
    }
    Issue.record("never happened: \(what)")
    return false
}

/// Quick retries for tests that stop the API server on purpose.
var testInformerOptions: InformerOptions {
    var options = InformerOptions()
    options.backoff = Backoff(initial: .milliseconds(200), maximum: .seconds(2))
    return options
}

extension TestKubeAPIServer {
    /// A client as the administrator (or with `token`).
    func client(token: String = TestKubeAPIServer.adminToken, qps: Double = 50, burst: Int = 100) throws -> KubeClient {
        let path = directory + "/kubeconfig-\(UUID().uuidString.prefix(6))"
        try writeKubeconfig(to: path, token: token)
        let connection = try KubeConnection.from(KubeConfig.load(file: path), source: path)
        return try KubeClient(connection: connection, qps: qps, burst: burst)
    }
}

/// A Service manifest (ClusterIP allocated by the API server) with optional labels.
func serviceYAML(_ name: String, namespace: String = "default", labels: [String: String] = [:],
                 port: Int = 80) -> String {
    let labelText = labels.isEmpty ? "" : "\n  labels: {" + labels.map { "\"\($0)\": \"\($1)\"" }.joined(separator: ", ") + "}"
    return """
        apiVersion: v1
        kind: Service
        metadata:
          name: \(name)
          namespace: \(namespace)\(labelText)
        spec:
          ports: [{name: http, port: \(port), protocol: TCP}]
        """
}

func objectNames(_ state: [ProxyObjectID: KubeObject], _ kind: ProxyObjectID.Kind) -> Set<String> {
    Set(state.keys.filter { $0.kind == kind }.map(\.name))
}

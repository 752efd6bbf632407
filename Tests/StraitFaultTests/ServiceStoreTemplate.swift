import Foundation
import StraitTestSupport
import Synchronization

/// The store holding `ZoneFlipManifests`' Services and the node in zone a, written once per test
/// process by the built `strait apply` (2,000 Services take tens of seconds on a busy machine) and
/// copied for each proxy mode. Removed when the test process exits.
enum ServiceStoreTemplate {
    private static let made = Mutex<[Int: String]>([:])
    private static let directory = NSTemporaryDirectory() + "strait-fault-template-\(getpid())"

    /// Copies a store with `services` Services (node in zone a) to `path`.
    static func copy(services: Int, to path: String) throws {
        let template = try made.withLock { made in
            if let path = made[services] { return path }
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            atexit { try? FileManager.default.removeItem(atPath: ServiceStoreTemplate.directory) }
            let store = directory + "/services-\(services).db", manifest = directory + "/services-\(services).yaml"
            try (ZoneFlipManifests.services(services) + "\n---\n" + ZoneFlipManifests.node(.a))
                .write(toFile: manifest, atomically: true, encoding: .utf8)
            try Command.run([builtProduct("strait"), "apply", "-f", manifest, "--store", store])
            made[services] = store
            return store
        }
        try FileManager.default.copyItem(atPath: template, toPath: path)
    }
}

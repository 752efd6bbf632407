import Foundation
import Testing

@testable import StraitStore

/// The embedded store is root's alone: a store Strait creates is 0600 (and so are SQLite's -wal and
/// -shm files, which copy the database's mode), in directories Strait creates 0700.
struct StoreFileModeTests {
    static func mode(_ path: String) throws -> Int {
        try #require(try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int)
    }

    @Test func newStoreFileAndDirectoriesArePrivate() async throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("strait-store-modes-\(UUID())").path
        defer { try? FileManager.default.removeItem(atPath: root) }
        let path = "\(root)/var/lib/strait/store.db"
        let store = try await openStore(url: path)
        try await store.put("/strait/services/default/web", value: Data("{}".utf8))
        #expect(try Self.mode(path) == 0o600)
        for suffix in ["-wal", "-shm"] where FileManager.default.fileExists(atPath: path + suffix) {
            #expect(try Self.mode(path + suffix) == 0o600, "\(suffix)")
        }
        #expect(try Self.mode("\(root)/var/lib/strait") == 0o700)
        #expect(try Self.mode("\(root)/var") == 0o700)
        await store.close()
    }

    @Test func anExistingStoreKeepsTheModeItsOperatorGaveIt() async throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("strait-store-modes-\(UUID())").path
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: root) }
        let path = "\(root)/store.db"
        await (try await openStore(url: path)).close()
        #expect(chmod(path, 0o640) == 0)
        let store = try await openStore(url: path)
        try await store.put("/a", value: Data("1".utf8))
        await store.close()
        #expect(try Self.mode(path) == 0o640)
    }
}

import Foundation
import Testing

@testable import StraitStore

struct StoreURLTests {
    @Test(arguments: [
        ("/var/lib/strait/store.db", StoreLocation.sqlite(path: "/var/lib/strait/store.db")),
        ("sqlite:///tmp/x.db", .sqlite(path: "/tmp/x.db")),
        ("./store.db", .sqlite(path: "./store.db")),
        ("etcd://10.0.0.1:2379", .etcd(endpoints: [EtcdEndpoint(host: "10.0.0.1", port: 2379)], tls: nil)),
        (
            "etcd://h1:2379,h2:2380", .etcd(
                endpoints: [EtcdEndpoint(host: "h1", port: 2379), EtcdEndpoint(host: "h2", port: 2380)], tls: nil)
        ),
        ("etcd://[::1]:2379,h3", .etcd(
            endpoints: [EtcdEndpoint(host: "::1", port: 2379), EtcdEndpoint(host: "h3", port: 2379)], tls: nil)),
    ])
    func parsesGoodURLs(url: String, expected: StoreLocation) throws {
        #expect(try StoreLocation(parsing: url) == expected)
    }

    @Test func defaultIsTheEmbeddedFile() {
        #expect(StoreLocation.default == .sqlite(path: "/var/lib/strait/store.db"))
    }

    @Test func tlsFilesGoWithEtcd() throws {
        let tls = EtcdTLSFiles(caFile: "/ca.pem", certFile: "/c.pem", keyFile: "/k.pem")
        #expect(try StoreLocation(parsing: "etcd://h:2379", tls: tls) == .etcd(
            endpoints: [EtcdEndpoint(host: "h", port: 2379)], tls: tls))
        #expect(try StoreLocation(parsing: "/x.db", tls: EtcdTLSFiles()) == .sqlite(path: "/x.db"))
    }

    @Test(arguments: [
        ("", "empty"),
        ("   ", "empty"),
        ("etcd://", "empty etcd endpoint"),
        ("etcd://h1:2379,", "empty etcd endpoint"),
        ("etcd://h1:notaport", "not host:port"),
        ("etcd://h1:70000", "not host:port"),
        ("etcd://h1:2379/path", "not host:port"),
        ("etcd://h1:1:2", "not host:port"),
        ("sqlite://relative.db", "absolute path"),
        ("http://h1:2379", "unknown scheme \"http\""),
        ("/var/lib/strait/", "directory"),
    ])
    func rejectsBadURLs(url: String, reason: String) {
        let error = #expect(throws: StoreError.self) { try StoreLocation(parsing: url) }
        #expect(error?.code == .invalidURL)
        #expect(error?.description.contains(reason) == true, "\(String(describing: error))")
    }

    @Test func rejectsTLSOptionsThatDoNotFit() {
        let sqlite = #expect(throws: StoreError.self) {
            try StoreLocation(parsing: "/x.db", tls: EtcdTLSFiles(caFile: "/ca.pem"))
        }
        #expect(sqlite?.description.contains("apply only to etcd") == true)
        let half = #expect(throws: StoreError.self) {
            try StoreLocation(parsing: "etcd://h", tls: EtcdTLSFiles(certFile: "/c.pem"))
        }
        #expect(half?.description.contains("together") == true)
    }

    @Test func openStoreOpensSQLiteAndCreatesItsDirectory() async throws {
        let directory = "/tmp/strait-open-\(UInt32.random(in: 0...UInt32.max))"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let store = try await openStore(url: "sqlite://\(directory)/sub/store.db")
        #expect(store is SQLiteStore)
        try await store.put("/k", value: "v".bytes)
        #expect(try await store.get("/k")?.value == "v".bytes)
        await store.close()
    }
}

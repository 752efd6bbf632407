import ArgumentParser
import StraitProxy
import StraitSources
import StraitStore

/// `--store` and the etcd TLS files, the same for every command that reads or writes the store.
struct ObjectStoreOptions: ParsableArguments {
    @Option(help: "The store: a SQLite file path, sqlite:///path, or etcd://host:2379[,host:2379] (default $STRAIT_STORE or /var/lib/strait/store.db).")
    var store: String?

    @Option(name: .customLong("etcd-cafile"), help: "CA bundle for an etcd store over TLS.")
    var etcdCAFile: String?

    @Option(name: .customLong("etcd-certfile"), help: "Client certificate for an etcd store.")
    var etcdCertFile: String?

    @Option(name: .customLong("etcd-keyfile"), help: "Client key for an etcd store.")
    var etcdKeyFile: String?

    /// The store's location: `--store`, else `$STRAIT_STORE`, else the default SQLite file.
    var url: String { store ?? StoreLocation.defaultURL }

    /// The etcd TLS files, nil when none is given.
    var tls: EtcdTLSFiles? {
        let files = EtcdTLSFiles(caFile: etcdCAFile, certFile: etcdCertFile, keyFile: etcdKeyFile)
        return files == EtcdTLSFiles() ? nil : files
    }

    func open() async throws -> ObjectStore {
        try await ObjectStore.open(url: url, caFile: etcdCAFile, certFile: etcdCertFile, keyFile: etcdKeyFile)
    }
}

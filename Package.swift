// swift-tools-version:6.0
import PackageDescription

/// For strait-cni's start (see the strait-cni target), in each module it links: concrete generic types built by
/// their metadata accessors, not from mangled names the runtime demangles; and every function in a section of its
/// own, so strait-cni's linker can lay out the ones an ADD runs side by side (cni/static-link/strait-cni.order).
let cniStartSettings: [SwiftSetting] = [
    .unsafeFlags(["-Xfrontend", "-disable-concrete-type-metadata-mangled-name-accessors",
                  "-Xfrontend", "-function-sections"]),
]

/// Strait: the service-networking dataplane of a Kubernetes node.
/// Layers, bottom up: C system libraries and their shims, C-free Swift wrappers over them
/// (`StraitNetlink`, `StraitNFT`), the value model (`StraitModel`), and thin executables.
let package = Package(
    name: "Strait",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "strait", targets: ["strait"]),
        .executable(name: "strait-cni", targets: ["strait-cni"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-collections", from: "1.6.0"),
    ],
    targets: [
        // MARK: C libraries
        .systemLibrary(name: "CNetlink", pkgConfig: "libnl-3.0", providers: [.apt(["libnl-3-dev", "libnl-route-3-dev", "libnl-genl-3-dev"])]),
        .target(name: "CNetlinkShim", dependencies: ["CNetlink"], cSettings: [.define("_GNU_SOURCE"), .unsafeFlags(["-I/usr/include/libnl3"])]),
        .systemLibrary(name: "CNftables", pkgConfig: "libnftnl", providers: [.apt(["libmnl-dev", "libnftnl-dev"])]),
        .target(name: "CNftablesShim", dependencies: ["CNftables"], cSettings: [.define("_GNU_SOURCE")]),
        /// libmnl's functions for strait-cni's static link alone (Debian ships no libmnl.a).
        .target(name: "CNetlinkMessages"),
        /// For strait-cni's static link alone: the Swift runtime's argv look-up, without the /proc/self/maps read at each start.
        .target(name: "CRuntimeStart"),

        // MARK: Values and the system
        .target(name: "StraitModel", swiftSettings: cniStartSettings),
        /// Files, locks and child processes: the one door to the system that several modules share.
        .target(name: "CSystemShim", cSettings: [.define("_GNU_SOURCE")]),
        .target(name: "StraitSystem", dependencies: ["CSystemShim"],
                swiftSettings: cniStartSettings),
        .target(name: "StraitManifest", dependencies: ["StraitModel", .product(name: "Yams", package: "Yams")]),

        // MARK: Store
        .systemLibrary(name: "CSQLite", pkgConfig: "sqlite3", providers: [.apt(["libsqlite3-dev"])]),
        .target(name: "StraitStore", dependencies: [
            "CSQLite",
            .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOHTTP1", package: "swift-nio"),
            .product(name: "NIOTLS", package: "swift-nio"),
            .product(name: "NIOSSL", package: "swift-nio-ssl"),
        ]),

        // MARK: Kubernetes API
        /// The Kubernetes API client: kubeconfig, in-cluster config, TLS, informers (pages, watch, 410 re-list).
        .target(name: "StraitKube", dependencies: [
            "StraitModel",
            .product(name: "Yams", package: "Yams"),
            .product(name: "AsyncHTTPClient", package: "async-http-client"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOHTTP1", package: "swift-nio"),
            .product(name: "NIOSSL", package: "swift-nio-ssl"),
            .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
        ]),

        // MARK: Kernel
        .target(name: "StraitNetlink", dependencies: ["CNetlink", "CNetlinkShim", "StraitSystem"],
                swiftSettings: cniStartSettings),
        .target(name: "StraitNFT", dependencies: ["CNftables", "CNftablesShim", "StraitSystem", "StraitModel"],
                swiftSettings: cniStartSettings),

        // MARK: Daemons
        /// What `strait proxy` and `strait overlay` share as daemons: one log line format, their parts
        /// in one ServiceGroup, one signal path. Never linked into `strait-cni`.
        .target(name: "StraitDaemon", dependencies: [
            .product(name: "Logging", package: "swift-log"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            .product(name: "UnixSignals", package: "swift-service-lifecycle"),
        ]),

        // MARK: Node parts
        .target(name: "StraitCNI", dependencies: ["StraitModel", "StraitSystem", "StraitNetlink", "StraitNFT"],
                swiftSettings: cniStartSettings),
        /// The proxy's core: objects, the ServiceTable and its plan, sync loop, metrics, health, HTTP.
        .target(name: "StraitProxy", dependencies: [
            "StraitModel", "StraitSystem", "StraitDaemon",
            .product(name: "Logging", package: "swift-log"),
            .product(name: "CoreMetrics", package: "swift-metrics"),
            .product(name: "Prometheus", package: "swift-prometheus"),
            .product(name: "Yams", package: "Yams"),
            .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOHTTP1", package: "swift-nio"),
            .product(name: "HashTreeCollections", package: "swift-collections"),
        ]),
        /// One module per proxy mode: translation of the core's plan into one kernel interface.
        .target(name: "StraitProxyIPTables", dependencies: ["StraitProxy", "StraitModel", "StraitSystem"]),
        .target(name: "StraitProxyNFTables", dependencies: ["StraitProxy", "StraitNFT", "StraitModel", "StraitSystem"]),
        .target(name: "StraitProxyIPVS", dependencies: ["StraitProxy", "StraitModel", "StraitNetlink", "StraitNFT"]),
        /// Where the proxy's objects come from, outside the core: Strait's store and the Kubernetes API.
        .target(name: "StraitSources", dependencies: [
            "StraitProxy", "StraitKube", "StraitModel", "StraitStore",
            .product(name: "Logging", package: "swift-log"),
        ]),
        /// The one place a `--proxy-mode` becomes a backend.
        .target(name: "StraitProxyModes", dependencies: [
            "StraitProxy", "StraitProxyIPTables", "StraitProxyNFTables", "StraitProxyIPVS",
            "StraitNFT", "StraitNetlink", "StraitModel",
        ]),
        .target(name: "StraitOverlay", dependencies: [
            "StraitModel", "StraitSystem", "StraitStore", "StraitKube", "StraitNetlink", "StraitNFT",
            .product(name: "Logging", package: "swift-log"),
        ]),

        // MARK: Executables
        .executableTarget(name: "strait", dependencies: [
            "StraitModel", "StraitManifest", "StraitNetlink", "StraitNFT",
            "StraitProxy", "StraitProxyModes", "StraitKube", "StraitSources",
            "StraitOverlay", "StraitStore", "StraitDaemon",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        // The runtime execs strait-cni for every pod, so its start-up is on every pod's path. It is a fully static
        // executable (-static-executable: the Swift runtime, libstdc++, libnl, libnftnl and glibc linked in, at a
        // fixed address): no dynamic loader runs, nothing is found, mapped, relocated or bound at its start. Debian
        // ships libmnl only as a shared object, so its linker, cni/static-link/strait-cni-ld (lld), drops -lmnl and
        // CNetlinkMessages defines the libmnl functions strait-cni calls; the linker also lays out first what its
        // commands touch (cni/static-link/strait-cni.order). CRuntimeStart replaces the runtime's argv look-up.
        // Every Swift module it links is compiled with cniStartSettings: concrete generic types built by their
        // metadata accessors, not from mangled names (which the runtime demangles, checking each requirement by
        // scanning every conformance record), and function sections. See BENCHMARKS.md, "CNI ADD against the
        // kernel floor".
        .executableTarget(name: "strait-cni", dependencies: ["StraitCNI", "CNetlinkMessages", "CRuntimeStart"],
                          swiftSettings: cniStartSettings, linkerSettings: [
            .unsafeFlags(["-static-executable",
                          "-Xclang-linker", "--ld-path=\(Context.packageDirectory)/cni/static-link/strait-cni-ld"]),
        ]),
        /// Timed workloads that `scripts/bench` runs beside the reference tools.
        .executableTarget(name: "strait-bench", dependencies: [
            "StraitModel", "StraitNetlink", "StraitNFT", "StraitProxy", "StraitProxyNFTables", "StraitProxyIPVS",
            "StraitProxyIPTables",
        ]),

        // MARK: Fuzz targets
        /// One libFuzzer target per parser (`scripts/fuzz`). A normal build makes each a replay tool
        /// (`fuzz-cni FILE…`); `scripts/fuzz` builds them in `.build-fuzz` with `--sanitize fuzzer
        /// -DSTRAIT_LIBFUZZER`, where libFuzzer's main drives them. store-values and kube compile the
        /// parser files they fuzz (links to StraitOverlay's and StraitKube's) so the fuzz build needs
        /// no NIO or TLS stack.
        .executableTarget(name: "fuzz-cni", dependencies: ["StraitCNI", "StraitModel"], path: "Tests/Fuzz/Targets/cni"),
        .executableTarget(name: "fuzz-manifest", dependencies: ["StraitManifest", "StraitModel"],
                          path: "Tests/Fuzz/Targets/manifest"),
        .executableTarget(name: "fuzz-store-values", dependencies: ["StraitModel", "StraitCNI"],
                          path: "Tests/Fuzz/Targets/store-values"),
        .executableTarget(name: "fuzz-kube", dependencies: ["StraitModel"], path: "Tests/Fuzz/Targets/kube"),

        // MARK: Tests
        .target(name: "StraitTestSupport", dependencies: ["StraitModel", "StraitSystem"], path: "Sources/StraitTestSupport"),
        .testTarget(name: "StraitModelTests", dependencies: ["StraitModel", "StraitManifest"], resources: [.copy("Fixtures")]),
        .testTarget(name: "StraitNetlinkTests", dependencies: ["StraitNetlink", "StraitTestSupport"]),
        .testTarget(name: "StraitNFTTests", dependencies: ["StraitNFT", "StraitTestSupport"]),
        .testTarget(name: "StraitProxyNFTablesTests", dependencies: [
            "StraitProxyNFTables", "StraitProxy", "StraitNFT", "StraitModel", "StraitTestSupport",
        ]),
        .testTarget(name: "StraitCLITests", dependencies: ["StraitTestSupport"]),
        .testTarget(name: "StraitCNITests", dependencies: ["StraitCNI", "StraitTestSupport"]),
        .testTarget(name: "StraitProxyTests", dependencies: [
            "StraitProxy", "StraitProxyIPTables", "StraitProxyModes", "StraitSources", "StraitProxyNFTables", "StraitNFT",
            "StraitTestSupport", "StraitModel", "StraitManifest", "StraitStore", "StraitSystem",
            "StraitDaemon",
            .product(name: "Logging", package: "swift-log"),
        ]),
        .testTarget(name: "StraitDaemonTests", dependencies: [
            "StraitDaemon",
            .product(name: "Logging", package: "swift-log"),
            .product(name: "InMemoryLogging", package: "swift-log"),
        ]),
        .testTarget(name: "StraitProxyIPVSTests", dependencies: [
            "StraitProxyIPVS", "StraitProxy", "StraitModel", "StraitNetlink", "StraitTestSupport",
            // ProxyEndToEndTopology.swift is StraitProxyTests' file (a link), which makes iptables backends too.
            "StraitProxyIPTables", "StraitProxyModes", "StraitNFT",
        ]),
        .testTarget(name: "StraitKubeTests", dependencies: [
            "StraitKube", "StraitSources", "StraitProxy", "StraitModel", "StraitTestSupport", "StraitDaemon",
            "StraitOverlay",
            .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        .testTarget(name: "StraitStoreTests", dependencies: ["StraitStore", "StraitTestSupport"]),
        .testTarget(name: "StraitOverlayTests", dependencies: ["StraitOverlay", "StraitStore", "StraitTestSupport"]),
        /// The fault suite (RELIABILITY.md): crashes mid-sync, an etcd cluster losing its leader, CNI churn,
        /// full disks and corrupt files. It drives the built executables as an operator's node would.
        .testTarget(name: "StraitFaultTests", dependencies: [
            "StraitTestSupport", "StraitModel", "StraitStore", "StraitSystem", "StraitNFT", "StraitNetlink",
            "StraitOverlay", "StraitCNI",
            "fuzz-cni", "fuzz-manifest", "fuzz-store-values", "fuzz-kube",
        ]),
    ]
)

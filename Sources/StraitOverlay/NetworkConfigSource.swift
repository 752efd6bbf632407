import Foundation
import Logging
import StraitModel
import StraitStore

/// Reads the network config from the store, or writes it from the flags when none is stored.
/// The stored config wins; a flag that disagrees with it is an error naming both values.
struct NetworkConfigSource: Sendable {
    let store: any Store
    let options: OverlayOptions

    func load() async throws -> NetworkConfig {
        if let stored = try await store.get(options.layout.config) {
            let config: NetworkConfig
            do { config = try NetworkConfig(json: stored.value) } catch {
                throw OverlayError(.invalidConfig, "\(options.layout.config) in the store: \(error.message)")
            }
            try checkFlags(against: config)
            return config
        }
        guard let cidr = options.clusterCIDR else {
            throw OverlayError(.invalidConfig, "the store has no network config at \(options.layout.config); "
                + "pass --cluster-cidr (and --subnet-len) to write it")
        }
        let network: IPv4CIDR
        do { network = try IPv4CIDR(networkParsing: cidr) } catch {
            throw OverlayError(.invalidConfig, "--cluster-cidr: \(error)")
        }
        let backend = BackendConfig(type: options.backend ?? .vxlan, vni: options.vni ?? NetworkConfig.defaultVNI,
                                    port: options.vxlanPort ?? NetworkConfig.defaultPort)
        let config = try NetworkConfig(network: network, subnetLength: options.subnetLength, backend: backend)
        do {
            try await store.create(options.layout.config, value: config.json)
            let text = String(decoding: config.json, as: UTF8.self)
            overlayLog.info("wrote the network config \(text) to \(options.layout.config)")
            return config
        } catch let error as StoreError where error.code == .alreadyExists {
            return try await load()  // another node wrote it first: theirs wins
        }
    }

    private func checkFlags(against config: NetworkConfig) throws(OverlayError) {
        func conflict(_ flag: String, _ given: String, _ stored: String) -> OverlayError {
            OverlayError(.conflictingFlag, "\(flag) \(given) disagrees with the stored network config "
                + "(\(stored)) at \(options.layout.config); the stored config wins: drop the flag or change the store")
        }
        if let cidr = options.clusterCIDR, (try? IPv4CIDR(parsing: cidr))?.masked != config.network {
            throw conflict("--cluster-cidr", cidr, "Network \(config.network)")
        }
        if let length = options.subnetLength, length != config.subnetLength {
            throw conflict("--subnet-len", "\(length)", "SubnetLen \(config.subnetLength)")
        }
        if let backend = options.backend, backend != config.backend.type {
            throw conflict("--backend", backend.rawValue, "Backend.Type \(config.backend.type.rawValue)")
        }
        if config.backend.type == .vxlan {
            if let vni = options.vni, vni != config.backend.vni {
                throw conflict("--vni", "\(vni)", "Backend.VNI \(config.backend.vni)")
            }
            if let port = options.vxlanPort, port != config.backend.port {
                throw conflict("--vxlan-port", "\(port)", "Backend.Port \(config.backend.port)")
            }
        }
    }
}

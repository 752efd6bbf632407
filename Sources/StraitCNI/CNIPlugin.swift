#if canImport(Glibc)
import Glibc
#endif
import StraitModel

/// strait-cni's entry point: one invocation, environment and stdin in, JSON and an exit status out.
public enum CNIPlugin {
    /// What the process prints on stdout and exits with.
    public struct Outcome: Sendable {
        public let stdout: String
        public let status: Int32
    }

    /// `CNI_ARGS` keys strait-cni understands; any other is error 2 unless `IgnoreUnknown=1`.
    static let knownArgs: Set<String> = [
        "IgnoreUnknown", "IP", "MAC", "K8S_POD_NAMESPACE", "K8S_POD_NAME", "K8S_POD_INFRA_CONTAINER_ID", "K8S_POD_UID",
    ]

    public static func run(environment: [String: String], stdin: [UInt8]) -> Outcome {
        run(variable: { environment[$0] }, stdin: stdin)
    }

    /// The same, with the environment read variable by variable (`getenv` in strait-cni).
    public static func run(variable: (String) -> String?, stdin: [UInt8]) -> Outcome {
        // stdin is parsed once. Errors are reported in the configuration's version when it can be
        // read, else the latest.
        let document = Result { () throws(JSONReader.SyntaxError) in try JSONReader.parse(stdin) }
        let declaredVersion = (try? document.get())?["cniVersion"]?.stringValue
        do throws(CNIError) {
            let environment = try CNIEnvironment(variable: variable)
            if environment.command == .version {
                return Outcome(stdout: encode(versionInfo(declaredVersion ?? CNIVersion.latest.description)), status: 0)
            }
            let config: NetworkConfig
            switch document {
            case .success(let document): config = try NetworkConfig.decode(document)
            case .failure(let error):
                throw CNIError(.decodeFailure, "the network configuration on stdin is not JSON",
                               details: error.description)
            }
            let version = try CNIVersion.negotiate(config.cniVersion)
            let output = try dispatch(environment, config, version)
            return Outcome(stdout: output, status: 0)
        } catch {
            let version = declaredVersion.flatMap(CNIVersion.init).map(\.description) ?? CNIVersion.latest.description
            return Outcome(stdout: encode(errorObject(error, cniVersion: version)), status: 1)
        }
    }

    private static func dispatch(_ env: CNIEnvironment, _ config: NetworkConfig, _ version: CNIVersion) throws(CNIError) -> String {
        let key = AttachmentKey(containerID: env.containerID, ifname: env.ifname)
        let ipam = IPAM(dataDir: config.dataDirectory, network: config.name)
        switch env.command {
        case .add:
            try checkArgs(env)
            let result = try PodSetup(env: env, config: config, key: key, ipam: ipam).add()
            return encode(result.shaped(for: version).json)
        case .del:
            try PodSetup.delete(env: env, config: config, key: key, ipam: ipam)
            return ""
        case .check:
            guard version >= CNIVersion.check else {
                throw CNIError(.incompatibleVersion, "CHECK needs cniVersion 0.4.0 or later, not \(version)")
            }
            try PodSetup(env: env, config: config, key: key, ipam: ipam).check()
            return ""
        case .status:
            try requireGCAndStatus(version, "STATUS")
            try status(config, ipam: ipam)
            return ""
        case .gc:
            try requireGCAndStatus(version, "GC")
            let valid = Set((config.validAttachments ?? []).map { AttachmentKey(containerID: $0.containerID, ifname: $0.ifname) })
            try PodSetup.collectGarbage(config: config, keeping: valid, ipam: ipam)
            return ""
        case .version:
            return encode(versionInfo(version.description))
        }
    }

    /// STATUS: ready when the network is known and every pool has a free address; otherwise 50.
    static func status(_ config: NetworkConfig, ipam: IPAM) throws(CNIError) {
        let network: PodNetwork
        do throws(CNIError) { network = try PodNetwork(config: config) } catch {
            throw CNIError(.unavailable, "not ready: \(error.msg)", details: error.details)
        }
        for pool in network.pools where try ipam.freeCount(in: pool) == 0 {
            throw CNIError(.unavailable, "not ready: no free address left in \(pool.subnet)")
        }
    }

    private static func requireGCAndStatus(_ version: CNIVersion, _ command: String) throws(CNIError) {
        guard version >= CNIVersion.gcAndStatus else {
            throw CNIError(.incompatibleVersion, "\(command) needs cniVersion 1.1.0 or later, not \(version)")
        }
    }

    private static func checkArgs(_ env: CNIEnvironment) throws(CNIError) {
        if env.arg("IgnoreUnknown").map({ ["1", "true"].contains($0.lowercased()) }) == true { return }
        if let unknown = env.args.first(where: { !knownArgs.contains($0.key) }) {
            throw CNIError(.unsupportedField, "CNI_ARGS key \(unknown.key)=\(unknown.value) is not supported",
                           details: "add IgnoreUnknown=1 to pass keys strait-cni does not use")
        }
    }

    /// VERSION's answer: the configuration's version and every version strait-cni speaks.
    private static func versionInfo(_ cniVersion: String) -> JSONValue {
        .object([
            "cniVersion": .string(cniVersion),
            "supportedVersions": .array(CNIVersion.supported.map { .string($0.description) }),
        ])
    }

    /// What the plugin prints on stdout.
    static func encode(_ value: JSONValue) -> String { JSONWriter.prettyPrinted(value) }
}

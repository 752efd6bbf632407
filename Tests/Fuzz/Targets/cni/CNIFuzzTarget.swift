import Foundation
@testable import StraitCNI
import StraitModel

/// strait-cni's request parsing: the `CNI_*` environment and the network configuration on stdin.
/// An input is `KEY=VALUE` lines, a NUL byte, then stdin; without a NUL it is stdin alone, under an
/// ADD environment. Beyond "no crash": what the parsers accept obeys the rules they enforce, a
/// `prevResult` re-encoded decodes equal, and the plugin answers every refused request with the
/// spec's error object.
enum FuzzTarget {
    static let defaultEnvironment = [
        "CNI_COMMAND": "ADD", "CNI_CONTAINERID": "fuzz", "CNI_NETNS": "/var/run/netns/fuzz", "CNI_IFNAME": "eth0",
    ]

    static func check(_ input: [UInt8]) throws(FuzzViolation) {
        let (environment, stdin) = split(input)
        try checkEnvironment(environment)
        try checkConfig(stdin)
        try checkPlugin(environment, stdin)
    }

    /// The environment lines and stdin of one input.
    static func split(_ input: [UInt8]) -> (environment: [String: String], stdin: [UInt8]) {
        guard let nul = input.firstIndex(of: 0) else { return (defaultEnvironment, input) }
        var environment: [String: String] = [:]
        for line in input[..<nul].split(separator: UInt8(ascii: "\n")) {
            let text = String(decoding: line, as: UTF8.self)
            guard let equals = text.firstIndex(of: "=") else { continue }
            environment[String(text[..<equals])] = String(text[text.index(after: equals)...])
        }
        return (environment, Array(input[(nul + 1)...]))
    }

    static func checkEnvironment(_ variables: [String: String]) throws(FuzzViolation) {
        guard let environment = try? CNIEnvironment(variables) else { return }
        try require(environment.command.rawValue == variables["CNI_COMMAND"], "command \(environment.command) read back wrong")
        switch environment.command {
        case .add, .check, .del:
            try require((1...15).contains(environment.ifname.utf8.count) && !environment.ifname.contains("/"),
                        "accepted CNI_IFNAME \(String(reflecting: environment.ifname))")
            try require(!environment.containerID.isEmpty, "accepted an empty CNI_CONTAINERID")
            if environment.command != .del {
                try require(!environment.netns.isEmpty, "accepted \(environment.command) without CNI_NETNS")
            }
        case .status, .gc, .version:
            break
        }
        for (key, value) in environment.args {
            try require(!key.isEmpty && !key.contains(";") && !value.contains(";"), "CNI_ARGS item \(key)=\(value) kept a ';'")
        }
        for (key, _) in environment.args {
            try require(environment.arg(key) == environment.args.first { $0.key == key }?.value, "arg(\(key)) is not the first")
        }
    }

    static func checkConfig(_ stdin: [UInt8]) throws(FuzzViolation) {
        let config: NetworkConfig
        do {
            config = try NetworkConfig.decode(stdin)
        } catch {
            try require(!error.msg.isEmpty, "a refusal without a message (code \(error.code))")
            return
        }
        if let mtu = config.mtu { try require((576...65535).contains(mtu), "accepted mtu \(mtu)") }
        try require((try? CNIEnvironment.validateContainerID(config.name)) != nil, "accepted network name \(config.name)")
        for mapping in config.runtimeConfig?.portMappings ?? [] {
            try require((1...65535).contains(mapping.hostPort) && (1...65535).contains(mapping.containerPort),
                        "accepted port mapping \(mapping)")
        }
        if let mac = config.runtimeConfig?.mac { try require(NetworkConfig.isUnicastMAC(mac), "accepted mac \(mac)") }
        if let result = config.prevResult {
            let encoded = CNIPlugin.encode(result.json)
            let decoded = (try? JSONReader.parse(Array(encoded.utf8))).flatMap { try? CNIResult(json: $0) }
            try require(decoded == result, "prevResult does not survive re-encoding: \(encoded)")
        }
        if let version = try? CNIVersion.negotiate(config.cniVersion) {
            try require(CNIVersion(version.description) == version, "version \(version) does not read back")
            try require(CNIVersion.supported.contains(version), "negotiated unsupported version \(version)")
        }
        // Only a configured subnet: without one PodNetwork reads the subnet file.
        if !config.subnetList.isEmpty, let network = try? PodNetwork(config: config) {
            for pool in network.pools {
                try require(pool.contains(pool.first) && pool.contains(pool.last) && pool.first <= pool.last,
                            "pool \(pool.subnet) has first \(pool.first), last \(pool.last)")
            }
        }
    }

    /// The whole plugin, where it does no I/O: a refused environment, or VERSION.
    static func checkPlugin(_ variables: [String: String], _ stdin: [UInt8]) throws(FuzzViolation) {
        let environment = try? CNIEnvironment(variables)
        guard environment == nil || environment?.command == .version else { return }
        let outcome = CNIPlugin.run(environment: variables, stdin: stdin)
        let object = try? JSONSerialization.jsonObject(with: Data(outcome.stdout.utf8)) as? [String: Any]
        try require(object?["cniVersion"] is String, "plugin printed no cniVersion: \(outcome.stdout)")
        if outcome.status == 0 {
            try require(environment?.command == .version && object?["supportedVersions"] != nil,
                        "exit 0 without a version answer: \(outcome.stdout)")
        } else {
            try require(object?["code"] is Int && object?["msg"] is String, "an error without code and msg: \(outcome.stdout)")
        }
    }
}

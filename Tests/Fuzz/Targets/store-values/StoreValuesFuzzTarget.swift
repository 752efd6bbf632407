import Foundation
@testable import StraitCNI
import StraitModel

/// Values Strait reads back from its store and state files: a node's subnet lease (flannel's
/// `LeaseAttrs` JSON under `…/subnets/10.244.1.0-24`), the overlay's network config, a stored
/// Kubernetes object (the JSON `strait apply` writes under `/strait/…`), and strait-cni's lease
/// book. An input is a key line, then the value; every decoder reads the same input. SubnetLease,
/// NetworkConfig and OverlayError are StraitOverlay's own files, compiled here (links).
/// Beyond "no crash": what decodes re-encodes to a value that decodes equal.
enum FuzzTarget {
    static func check(_ input: [UInt8]) throws(FuzzViolation) {
        let newline = input.firstIndex(of: UInt8(ascii: "\n"))
        let key = String(decoding: input[..<(newline ?? input.endIndex)], as: UTF8.self)
        let value = Data(newline.map { input[($0 + 1)...] } ?? input[...])
        try checkLease(key: key, value: value)
        try checkNetworkConfig(value)
        try checkStoredObject(value)
        try checkLeaseBook(value)
    }

    static func checkLease(key: String, value: Data) throws(FuzzViolation) {
        guard let lease = SubnetLease(key: key, value: value) else { return }
        let again = SubnetLease(key: lease.key, value: lease.value)
        try require(again == lease, "lease \(lease) does not read back from \(String(decoding: lease.value, as: UTF8.self))")
        try require(OverlayKeys.subnet(fromKey: lease.key) == lease.subnet, "lease key \(lease.key) names another subnet")
    }

    static func checkNetworkConfig(_ value: Data) throws(FuzzViolation) {
        guard let config = try? NetworkConfig(json: value) else { return }
        try require(config.network.contains(config.subnetMin) && config.network.contains(config.subnetMax)
                     && config.subnetMin <= config.subnetMax, "config \(config) has subnets outside its network")
        try require(config.subnetLength > config.network.prefixLength && config.subnetLength <= 30,
                    "config accepted SubnetLen \(config.subnetLength) for \(config.network)")
        let again: NetworkConfig
        do { again = try NetworkConfig(json: config.json) } catch {
            throw FuzzViolation("config \(config) does not read back: \(error)")
        }
        // The stored JSON carries no SubnetMin/SubnetMax: a config Strait writes uses the defaults.
        try require(again.network == config.network && again.subnetLength == config.subnetLength
                     && again.backend == config.backend && again.ipv6 == config.ipv6,
                    "config \(config) reads back as \(again)")
    }

    static func checkStoredObject(_ value: Data) throws(FuzzViolation) {
        guard let object = try? JSONDecoder().decode(KubeObject.self, from: value) else { return }
        _ = object.validationErrors()
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        guard let stored = try? encoder.encode(object) else { throw FuzzViolation("\(object.reference) does not encode") }
        try require((try? JSONDecoder().decode(KubeObject.self, from: stored)) == object,
                    "\(object.reference) does not read back from \(String(decoding: stored, as: UTF8.self))")
    }

    static func checkLeaseBook(_ value: Data) throws(FuzzViolation) {
        guard let book = try? IPAM.LeaseBook(text: String(decoding: value, as: UTF8.self)) else { return }
        let stored = book.text
        try require((try? IPAM.LeaseBook(text: stored)) == book, "the lease book does not read back from \(stored)")
    }
}

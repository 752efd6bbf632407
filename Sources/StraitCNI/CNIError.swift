/// The error codes of the CNI spec (0–99) and Strait's own (100 and up, documented in cni/README.md).
public enum CNIErrorCode: Int, Sendable, CaseIterable {
    case incompatibleVersion = 1
    case unsupportedField = 2
    case unknownContainer = 3
    case invalidEnvironment = 4
    case ioFailure = 5
    case decodeFailure = 6
    case invalidNetworkConfig = 7
    case tryAgainLater = 11
    case unavailable = 50
    case unavailableLimitedConnectivity = 51
    /// Every address of the pool is leased.
    case poolExhausted = 100
    /// ADD found `CNI_IFNAME` already present in the pod's namespace.
    case interfaceExists = 101
    /// A requested static address is outside the subnet, reserved, or leased to another container.
    case addressUnavailable = 102
    /// The kernel refused a step of setting up or removing the pod's interface.
    case kernelFailure = 103
    /// CHECK found the pod's interface, addresses or routes different from the ADD result.
    case checkFailed = 104
    /// The nftables rules of hostPort mappings could not be programmed (a clash with another pod too).
    case portMappingFailure = 105
}

/// A failure reported to the runtime as the spec's error object on stdout, with a non-zero exit.
public struct CNIError: Error, Sendable, Equatable, CustomStringConvertible {
    public let code: CNIErrorCode
    public let msg: String
    public let details: String

    public init(_ code: CNIErrorCode, _ msg: String, details: String = "") {
        self.code = code
        self.msg = msg
        self.details = details
    }

    public var description: String { details.isEmpty ? msg : "\(msg): \(details)" }
}

/// The spec's error object: `cniVersion`, `code`, `msg` and `details` when there are any.
func errorObject(_ error: CNIError, cniVersion: String) -> JSONValue {
    var object = JSONObjectBuilder()
    object.set("cniVersion", cniVersion)
    object.set("code", error.code.rawValue)
    object.set("msg", error.msg)
    object.set("details", error.details.isEmpty ? nil : error.details)
    return object.value
}

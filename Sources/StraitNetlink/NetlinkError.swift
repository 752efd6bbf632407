#if canImport(Glibc)
import Glibc
#endif
import CNetlink

/// A netlink request that failed: what was attempted, on which object, and why.
///
/// `code` is libnl's classification (`NLE_*`); `errno` is the kernel's own answer when the kernel
/// refused the request (for example `EEXIST` when a link name is taken), `nil` when libnl failed
/// before or without asking the kernel.
public struct NetlinkError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What went wrong, as libnl classifies it, plus `familyNotFound` for generic-netlink lookups.
    public struct Code: RawRepresentable, Sendable, Hashable, CustomStringConvertible {
        public let rawValue: Int32
        public init(rawValue: Int32) { self.rawValue = rawValue }

        public static let objectExists = Code(rawValue: NLE_EXIST)
        public static let objectNotFound = Code(rawValue: NLE_OBJ_NOTFOUND)
        public static let noDevice = Code(rawValue: NLE_NODEV)
        public static let permissionDenied = Code(rawValue: NLE_PERM)
        public static let invalidArgument = Code(rawValue: NLE_INVAL)
        public static let addressFamilyNotSupported = Code(rawValue: NLE_AF_NOSUPPORT)
        public static let notSupported = Code(rawValue: NLE_OPNOTSUPP)
        public static let busy = Code(rawValue: NLE_BUSY)
        public static let rangeError = Code(rawValue: NLE_RANGE)
        /// A generic-netlink family (such as IPVS) that this kernel does not provide.
        /// Strait's own code, outside libnl's range.
        public static let familyNotFound = Code(rawValue: 10_000)
        /// A namespace, address or argument Strait could not use before any netlink request was made.
        public static let system = Code(rawValue: 10_001)

        public var description: String {
            switch self {
            case .familyNotFound: "family not found in this kernel"
            case .system: "system error"
            default: String(cString: nl_geterror(rawValue))
            }
        }
    }

    /// The operation attempted, such as "add link" or "delete route".
    public let operation: String
    /// The object it was attempted on, such as a link name or a route destination.
    public let object: String
    public let code: Code
    /// The kernel's (or the system call's) errno, when there is one.
    public let errno: Int32?
    /// Why Strait refused the request itself, before asking the kernel ("port 0 is not a service port").
    public let detail: String?

    public init(operation: String, object: String, code: Code, errno: Int32? = nil, detail: String? = nil) {
        self.operation = operation
        self.object = object
        self.code = code
        self.errno = errno
        self.detail = detail
    }

    /// Reads like "add link \"veth0\": File exists (EEXIST)".
    public var description: String {
        var text = "\(operation) \"\(object)\": "
        if let detail {
            text += detail
        } else if code == .familyNotFound {
            text += "family not found in this kernel"
            if let errno, let name = errnoName(errno) { text += " (\(name))" }
        } else if let errno {
            text += String(cString: strerror(errno))
            if let name = errnoName(errno) { text += " (\(name))" }
        } else {
            text += code.description
        }
        return text
    }
}

/// Symbolic names for the errnos netlink requests commonly return, so messages are greppable.
private func errnoName(_ value: Int32) -> String? {
    switch value {
    case EEXIST: "EEXIST"
    case ENOENT: "ENOENT"
    case ENODEV: "ENODEV"
    case EPERM: "EPERM"
    case EACCES: "EACCES"
    case EINVAL: "EINVAL"
    case EBUSY: "EBUSY"
    case ENETUNREACH: "ENETUNREACH"
    case EADDRNOTAVAIL: "EADDRNOTAVAIL"
    case EOPNOTSUPP: "EOPNOTSUPP"
    case ERANGE: "ERANGE"
    case ESRCH: "ESRCH"
    case ENOBUFS: "ENOBUFS"
    case E2BIG: "E2BIG"
    default: nil
    }
}

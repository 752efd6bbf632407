/// A failure of the overlay agent: what it was doing and why, in words an operator can act on.
public struct OverlayError: Error, Sendable, Hashable, CustomStringConvertible {
    public enum Kind: String, Sendable, Hashable {
        /// The network config in the store (or from the flags) is unusable.
        case invalidConfig = "invalid network config"
        /// A flag disagrees with the config already in the store.
        case conflictingFlag = "conflicting flag"
        /// The underlay interface or address could not be determined or is unusable.
        case underlay = "underlay"
        /// No subnet could be leased.
        case lease = "lease"
        /// Programming the kernel failed.
        case kernel = "kernel"
        /// Reading or writing a local file failed.
        case file = "file"
    }

    public var kind: Kind
    public var message: String

    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    public var description: String { "\(kind.rawValue): \(message)" }
}

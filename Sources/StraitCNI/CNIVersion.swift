/// A CNI spec version such as `1.1.0`, ordered numerically.
public struct CNIVersion: Sendable, Hashable, Comparable, CustomStringConvertible {
    public let major: Int, minor: Int, patch: Int

    public init?(_ text: String) {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false).map { Int($0) }
        guard parts.count == 3, let major = parts[0], let minor = parts[1], let patch = parts[2] else { return nil }
        self.major = major
        self.minor = minor
        self.patch = patch
    }

    public var description: String { "\(major).\(minor).\(patch)" }

    public static func < (a: CNIVersion, b: CNIVersion) -> Bool {
        (a.major, a.minor, a.patch) < (b.major, b.minor, b.patch)
    }

    /// The versions whose results strait-cni can shape, oldest first.
    /// Spelled as numbers: every exec reads them, and parsing them from text cost each VERSION more than
    /// its answer.
    public static let supported = [CNIVersion(0, 3, 0), CNIVersion(0, 3, 1), CNIVersion(0, 4, 0),
                                   CNIVersion(1, 0, 0), CNIVersion(1, 1, 0)]
    public static let latest = CNIVersion(1, 1, 0)
    /// GC and STATUS exist from 1.1.0 on; older configurations get "incompatible version" for them.
    public static let gcAndStatus = CNIVersion(1, 1, 0)
    /// CHECK exists from 0.4.0 on.
    public static let check = CNIVersion(0, 4, 0)

    /// Results from 1.0.0 on drop the per-address `version` field.
    var resultHasAddressVersion: Bool { self < CNIVersion(1, 0, 0) }

    init(_ major: Int, _ minor: Int, _ patch: Int) {
        self.major = major
        self.minor = minor
        self.patch = patch
    }

    /// Parses a configuration's `cniVersion`, refusing versions strait-cni cannot speak.
    static func negotiate(_ text: String) throws(CNIError) -> CNIVersion {
        guard let version = CNIVersion(text) else {
            throw CNIError(.incompatibleVersion, "cniVersion \"\(text)\" is not a version",
                           details: "supported: \(supported.map(\.description).joined(separator: ", "))")
        }
        guard supported.contains(version) else {
            throw CNIError(.incompatibleVersion, "cniVersion \(text) is not supported",
                           details: "supported: \(supported.map(\.description).joined(separator: ", "))")
        }
        return version
    }
}

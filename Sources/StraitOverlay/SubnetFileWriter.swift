#if canImport(Glibc)
import Glibc
#endif
import StraitModel
import StraitSystem

/// Writes `/run/strait/subnet.env` for `strait-cni` (the format is `SubnetFile`'s; flannel's
/// `FLANNEL_*` names for `/run/flannel/subnet.env` or when told), atomically, so the plugin never
/// reads half a file.
public struct SubnetFileWriter: Sendable {
    public var path: String
    public var naming: SubnetFile.Naming

    public init(path: String, naming: SubnetFile.Naming = .strait) {
        self.path = path
        self.naming = naming
    }

    public func write(_ file: SubnetFile) throws(OverlayError) {
        try Self.writeAtomically(file.text(naming: naming), to: path, mode: 0o644)
    }

    /// The subnet a previous run wrote, to lease the same one again; nil when absent or unreadable.
    public func previousSubnet() -> IPv4CIDR? {
        guard let text = try? readTextFile(path) else { return nil }
        return (try? SubnetFile(parsing: text))?.ipv4Subnet
    }

    /// Writes `text` to `path` (creating its directory) so a reader sees the old file or the new one.
    /// subnet.env is 0644 in a 0755 directory, as flannel writes it (the CNI plugins of any runtime
    /// read it; it holds no secret); the agent's own state beside it is 0600.
    static func writeAtomically(_ text: String, to path: String, mode: mode_t = 0o600) throws(OverlayError) {
        do throws(FileError) {
            if let slash = path.lastIndex(of: "/"), slash != path.startIndex {
                try makeDirectories(String(path[..<slash]), mode: 0o755)
            }
            try writeFileAtomically(path, Array(text.utf8), mode: mode)
        } catch {
            throw OverlayError(.file, "cannot write \(path): \(error)")
        }
    }
}

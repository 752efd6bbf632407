import Foundation
import StraitModel

/// Writes `/run/strait/subnet.env` for `strait-cni`, atomically (a temporary file renamed over
/// the old one), so the plugin never reads half a file. The keys are those `StraitCNI.SubnetFile`
/// reads; `STRAIT_SUBNET` is the first usable address with the prefix, as flannel writes it.
///
///     STRAIT_NETWORK=10.244.0.0/16
///     STRAIT_SUBNET=10.244.1.1/24
///     STRAIT_MTU=1450
///     STRAIT_IPMASQ=true
public struct SubnetFileWriter: Sendable {
    public var path: String

    public init(path: String) { self.path = path }

    public static func text(network: IPv4CIDR, subnet: IPv4CIDR, mtu: Int, ipMasq: Bool) -> String {
        """
        STRAIT_NETWORK=\(network)
        STRAIT_SUBNET=\(subnet.firstUsable)/\(subnet.prefixLength)
        STRAIT_MTU=\(mtu)
        STRAIT_IPMASQ=\(ipMasq)

        """
    }

    public func write(network: IPv4CIDR, subnet: IPv4CIDR, mtu: Int, ipMasq: Bool) throws(OverlayError) {
        try Self.writeAtomically(Self.text(network: network, subnet: subnet, mtu: mtu, ipMasq: ipMasq), to: path)
    }

    /// The subnet a previous run wrote, to lease the same one again; nil when absent or unreadable.
    public func previousSubnet() -> IPv4CIDR? {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix("STRAIT_SUBNET=") {
            return (try? IPv4CIDR(parsing: line.dropFirst("STRAIT_SUBNET=".count)))?.masked
        }
        return nil
    }

    static func writeAtomically(_ text: String, to path: String) throws(OverlayError) {
        let directory = (path as NSString).deletingLastPathComponent
        let temporary = "\(path).tmp.\(getpid())"
        do {
            if !directory.isEmpty {
                try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            }
            let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
            guard fd >= 0 else { throw OverlayError(.file, "cannot create \(temporary): \(String(cString: strerror(errno)))") }
            let bytes = Array(text.utf8)
            let written = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, bytes.count) }
            let synced = fsync(fd)
            close(fd)
            guard written == bytes.count, synced == 0 else {
                unlink(temporary)
                throw OverlayError(.file, "cannot write \(temporary): \(String(cString: strerror(errno)))")
            }
            guard rename(temporary, path) == 0 else {
                unlink(temporary)
                throw OverlayError(.file, "cannot rename \(temporary) to \(path): \(String(cString: strerror(errno)))")
            }
        } catch let error as OverlayError {
            throw error
        } catch {
            throw OverlayError(.file, "cannot write \(path): \(error)")
        }
    }
}

import Foundation
import Logging
#if canImport(Glibc)
import Glibc
#endif

/// kube-proxy's conntrack settings (`KubeProxyConntrackConfiguration`, the `--conntrack-*` flags),
/// with its defaults.
public struct ConntrackSettings: Sendable, Hashable {
    /// nf_conntrack_max is raised to `maxPerCore × CPUs` (capped at 1,048,576, at least `min`);
    /// 0 leaves it alone.
    public var maxPerCore = 32768
    public var min = 131_072
    /// 0 leaves the sysctl alone.
    public var tcpEstablishedTimeout: Duration = .seconds(86400)
    public var tcpCloseWaitTimeout: Duration = .seconds(3600)
    public var tcpBeLiberal = false
    public var udpTimeout: Duration = .zero
    public var udpStreamTimeout: Duration = .zero

    public init() {}

    /// The nf_conntrack_max to raise to, or nil when `maxPerCore` is 0 (kube-proxy's `getConntrackMax`).
    public func wantedMax(cpus: Int) -> Int? {
        guard maxPerCore > 0 else { return nil }
        let scaled = maxPerCore * cpus
        if scaled > 1_048_576 { return 1_048_576 }
        return Swift.max(scaled, min)
    }
}

/// Sets the conntrack sysctls as kube-proxy does at start-up (`pkg/proxy/conntrack`,
/// `SetSysctls`), in the network namespace the proxy runs in:
/// - `nf_conntrack_max` only ever raised, and the module's `hashsize` raised to a quarter of it;
///   both belong to the initial namespace, so in another one a needed raise fails (permission
///   denied), as kube-proxy's does; `--conntrack-max-per-core=0` skips them;
/// - the TCP established and CLOSE_WAIT timeouts, liberal TCP tracking and the UDP timeouts, written
///   when they differ (they are per namespace).
/// Equivalent: `sysctl -w net.netfilter.nf_conntrack_tcp_timeout_established=86400` and so on.
public struct ConntrackSysctls: Sendable {
    public var settings: ConntrackSettings
    /// `/proc/sys/net/netfilter` (a test may point it elsewhere).
    public var directory: String
    /// `/sys/module/nf_conntrack/parameters/hashsize`.
    public var hashsizeFile: String
    public var log: Logger

    public init(settings: ConntrackSettings, directory: String = "/proc/sys/net/netfilter",
                hashsizeFile: String = "/sys/module/nf_conntrack/parameters/hashsize", log: Logger) {
        self.settings = settings
        self.directory = directory
        self.hashsizeFile = hashsizeFile
        self.log = log
    }

    /// The node's online CPUs (kube-proxy sizes the host-wide limit by them, not by the process's cpuset).
    public static func onlineCPUs() -> Int {
        if let text = try? String(contentsOfFile: "/sys/devices/system/cpu/online", encoding: .utf8),
           let count = CPUList.count(text.trimmingCharacters(in: .whitespacesAndNewlines)), count > 0 {
            return count
        }
        return ProcessInfo.processInfo.activeProcessorCount
    }

    public func apply(cpus: Int = ConntrackSysctls.onlineCPUs()) throws {
        if let max = settings.wantedMax(cpus: cpus) {
            let current = try? read("\(directory)/nf_conntrack_max")
            if current.map({ $0 < max }) ?? true {
                try write("\(directory)/nf_conntrack_max", max)
            }
            let hashsize = try read(hashsizeFile)
            if hashsize < max / 4 {
                log.info("setting conntrack hashsize to \(max / 4)")
                try write(hashsizeFile, max / 4)
            }
        } else {
            log.info("--conntrack-max-per-core is 0: leaving nf_conntrack_max as it is")
        }
        try set("nf_conntrack_tcp_timeout_established", seconds: settings.tcpEstablishedTimeout)
        try set("nf_conntrack_tcp_timeout_close_wait", seconds: settings.tcpCloseWaitTimeout)
        if settings.tcpBeLiberal { try set("nf_conntrack_tcp_be_liberal", 1) }
        try set("nf_conntrack_udp_timeout", seconds: settings.udpTimeout)
        try set("nf_conntrack_udp_timeout_stream", seconds: settings.udpStreamTimeout)
    }

    private func set(_ name: String, seconds: Duration) throws {
        let value = Int(seconds.components.seconds)
        guard value > 0 else { return }
        try set(name, value)
    }

    private func set(_ name: String, _ value: Int) throws {
        let path = "\(directory)/\(name)"
        if (try? read(path)) == value { return }
        try write(path, value)
    }

    private func read(_ path: String) throws -> Int {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw SysctlError(operation: "read", path: path, reason: "\(error.localizedDescription)")
        }
        guard let value = Int(text.trimmingCharacters(in: .whitespacesAndNewlines)) else {
            throw SysctlError(operation: "read", path: path, reason: "\(String(reflecting: text)) is not a number")
        }
        return value
    }

    private func write(_ path: String, _ value: Int) throws {
        log.info("setting \(path) to \(value)")
        let fd = open(path, O_WRONLY | O_TRUNC)
        guard fd >= 0 else {
            throw SysctlError(operation: "write \(value) to", path: path, reason: String(cString: strerror(errno)))
        }
        defer { close(fd) }
        let text = "\(value)\n"
        let written = text.withCString { Glibc.write(fd, $0, strlen($0)) }
        guard written == text.utf8.count else {
            throw SysctlError(operation: "write \(value) to", path: path, reason: String(cString: strerror(errno)))
        }
    }
}

/// A sysctl could not be read or written; names the file and the reason (errno's text).
public struct SysctlError: Error, CustomStringConvertible {
    public var operation: String
    public var path: String
    public var reason: String
    public var description: String { "cannot \(operation) \(path): \(reason)" }
}

/// The kernel's CPU list format: `0-3,5,7-8`.
enum CPUList {
    static func count(_ text: String) -> Int? {
        var total = 0
        for part in text.split(separator: ",") {
            let bounds = part.split(separator: "-")
            guard let low = Int(bounds[0]), let high = bounds.count > 1 ? Int(bounds[1]) : low, high >= low else {
                return nil
            }
            total += high - low + 1
        }
        return total
    }
}

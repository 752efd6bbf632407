import Foundation
import StraitNetlink
import StraitTestSupport

/// Whether this test process runs inside `scripts/vm`, whose Debian kernel has IPVS. This machine's
/// kernel has none, so the IPVS suites run only there (`scripts/test` starts them through the VM).
let inIPVSMachine = ProcessInfo.processInfo.environment["STRAIT_IN_VM"] == "1"

/// What `ipvsadm -Ln` prints, read back into words: each service line ("TCP 10.96.0.10:80 rr
/// persistent 600") with its destination lines ("10.1.0.2:8080 Masq 1 0 0"), spaces collapsed.
struct IPVSAdmListing {
    var services: [String: [String]] = [:]
    var destinations: [String: [[String]]] = [:]

    /// The service line's words after protocol and address ("rr", "persistent", "600"), by "TCP 10.0.0.1:80".
    subscript(service: String) -> [String]? { services[service] }
}

extension TestNamespace {
    /// `ipvsadm -Ln` in this namespace, parsed; the tool is Debian's, not Strait's reading of the kernel.
    func ipvsadmListing() throws -> IPVSAdmListing {
        var listing = IPVSAdmListing()
        var current: String?
        for line in try run(["ipvsadm", "-Ln"]).split(separator: "\n") {
            let words = line.split(separator: " ").map(String.init)
            guard let first = words.first else { continue }
            if first == "->" {
                guard let current, words.count > 1, words[1] != "RemoteAddress:Port" else { continue }
                listing.destinations[current, default: []].append(Array(words.dropFirst()))
            } else if ["TCP", "UDP", "SCTP"].contains(first), words.count > 1 {
                current = "\(first) \(words[1])"
                listing.services[current!] = Array(words.dropFirst(2))
                listing.destinations[current!] = []
            }
        }
        return listing
    }
}

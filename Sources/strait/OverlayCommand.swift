import ArgumentParser
import Foundation
import Logging
import StraitDaemon
import StraitOverlay
import StraitStore

/// `strait overlay`: the node agent that leases this node's pod subnet from the store, owns the
/// VXLAN device (or host-gw routes) and programs every other node's subnet; runs until SIGTERM/SIGINT.
struct OverlayCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "overlay",
        abstract: "Lease this node's pod subnet and route to every other node's (VXLAN or host-gw).")

    @OptionGroup var storeOptions: ObjectStoreOptions
    @Option(help: "The underlay interface (default: the one holding the default route).") var iface: String?
    @Option(help: "This node's address on the underlay (default: the interface's first IPv4 address).") var publicIp: String?
    @Option(help: "The cluster network, written to the store when it holds no config (e.g. 10.244.0.0/16).") var clusterCidr: String?
    @Option(help: "The prefix length of node subnets, written with --cluster-cidr (default 24).") var subnetLen: Int?
    @Option(help: "Where strait-cni reads this node's subnet.") var subnetFile: String = OverlayOptions.defaultSubnetFile
    @Option(help: "vxlan or host-gw (written with --cluster-cidr; default vxlan).") var backend: String?
    @Option(help: "The VXLAN network identifier (default 1).") var vni: UInt32?
    @Option(help: "The VXLAN UDP port (default 8472).") var vxlanPort: UInt16?
    @Option(name: .customLong("ip-masq"), help: "Masquerade pod traffic leaving the cluster network.") var ipMasq: Bool = true
    @Option(help: .hidden) var leaseTtl: Int64 = 24 * 3600

    func run() async throws {
        DaemonLogging.bootstrap(verbosity: 0)
        var backendType: BackendType?
        if let backend {
            guard let parsed = BackendType(rawValue: backend) else {
                throw ValidationError("--backend \(backend): use vxlan or host-gw")
            }
            backendType = parsed
        }
        let options = OverlayOptions(
            store: storeOptions.url, tls: storeOptions.tls, interface: iface, publicIP: publicIp, clusterCIDR: clusterCidr,
            subnetLength: subnetLen, subnetFile: subnetFile, backend: backendType, vni: vni, vxlanPort: vxlanPort,
            ipMasq: ipMasq, leaseTTL: leaseTtl)
        let agent = OverlayAgent(options: options)
        do {
            try await Daemon.run([DaemonPart("overlay agent") { try await agent.run() }], handleSignals: true,
                                 logger: Logger(label: "strait-overlay"))
        } catch is DaemonPartFailure {
            throw ExitCode.failure  // logged already, naming the part and the error
        }
    }
}

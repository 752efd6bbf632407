import ArgumentParser
import Foundation
import Logging
import StraitDaemon
import StraitKube
import StraitModel
import StraitOverlay
import StraitStore

/// `strait overlay`: the node agent that leases this node's pod subnet from the store (or, with
/// `--kube-subnet-mgr`, takes it from its Kubernetes Node), owns the VXLAN device (or host-gw
/// routes) and programs every other node's subnet; runs until SIGTERM/SIGINT.
/// Its flags are flanneld's where flanneld has one, with flanneld's defaults.
struct OverlayCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "overlay",
        abstract: "Lease this node's pod subnet and route to every other node's (VXLAN or host-gw); "
            + "a drop-in for flanneld.")

    @OptionGroup var storeOptions: ObjectStoreOptions
    @Option(help: ArgumentHelp("Where the network config and leases live in the store; /coreos.com/network reads and "
        + "writes flannel's own keys, so Strait and flannel agents share one network."))
    var etcdPrefix: String = KeyLayout.strait.prefix
    @Option(help: ArgumentHelp("The underlay interface, by name or address; repeat to try several in order "
        + "(default: the one holding the default route)."))
    var iface: [String] = []
    @Option(help: "A regular expression matched against interface names, then addresses; repeatable.")
    var ifaceRegex: [String] = []
    @Option(help: "Use the interface the route to this address leaves by.") var ifaceCanReach: String?
    @Option(help: "This node's address on the underlay (default: the interface's first IPv4 address).") var publicIp: String?
    @Option(help: "This node's IPv6 underlay address on a dual-stack network (default: the interface's first).")
    var publicIpv6: String?
    @Option(help: "The cluster network, written to the store when it holds no config (e.g. 10.244.0.0/16).") var clusterCidr: String?
    @Option(help: "The prefix length of node subnets, written with --cluster-cidr (default 24).") var subnetLen: Int?
    @Option(help: "Where strait-cni (or flannel's CNI plugin) reads this node's subnet.")
    var subnetFile: String = OverlayOptions.defaultSubnetFile
    @Option(help: ArgumentHelp("The subnet file's names: strait (STRAIT_*) or flannel (FLANNEL_*); default flannel "
        + "for a path ending in flannel/subnet.env, else strait."))
    var subnetFileNames: String?
    @Option(help: "vxlan or host-gw (written with --cluster-cidr; default vxlan).") var backend: String?
    @Option(help: "The VXLAN network identifier (default 1).") var vni: UInt32?
    @Option(help: "The VXLAN UDP port (default 8472).") var vxlanPort: UInt16?
    @Flag(name: .customLong("ip-masq"), inversion: .prefixedNo,
          help: "Masquerade pod traffic leaving the cluster network (off by default, as in flanneld).")
    var ipMasq: Bool = false
    @Flag(name: .customLong("iptables-forward-rules"), inversion: .prefixedNo,
          help: "Accept the pod network in iptables' FORWARD chain, so a DROP policy does not cut pods off.")
    var forwardRules: Bool = true
    @Flag(name: .customLong("ip-blackhole-route"), help: "Add a blackhole route for this node's subnet.")
    var blackholeRoute: Bool = false
    @Option(help: "Renew the subnet lease this many minutes before it expires (1-1439).")
    var subnetLeaseRenewMargin: Int = 60
    @Option(help: "The address the health endpoint listens on.") var healthzIp: String = "0.0.0.0"
    @Option(help: "The health endpoint's port (200 once this node is programmed, else 503); 0 turns it off.")
    var healthzPort: Int = 0
    @Option(help: .hidden) var leaseTtl: Int64 = 24 * 3600

    @Flag(help: ArgumentHelp("Take this node's subnet from its Kubernetes Node (spec.podCIDRs) and the other nodes' "
        + "from their Node annotations, instead of the store (flanneld's kube subnet manager)."))
    var kubeSubnetMgr = false
    @Option(help: "With --kube-subnet-mgr: a kubeconfig (default $KUBECONFIG, else the in-cluster service account).")
    var kubeconfigFile: String?
    @Option(help: "With --kube-subnet-mgr: the API server's address; overrides the kubeconfig's server.")
    var kubeApiUrl: String?
    @Option(help: "With --kube-subnet-mgr: flannel's net-conf.json, the network config.")
    var netConfigPath = "/etc/strait/net-conf.json"
    @Option(help: ArgumentHelp("With --kube-subnet-mgr: the prefix of the Node annotations holding the VTEP data "
        + "(flannel.alpha.coreos.com is flannel's own)."))
    var kubeAnnotationPrefix = NodeAnnotations.defaultPrefix
    @Option(help: "With --kube-subnet-mgr: this node's Node name (default $NODE_NAME, else the host name).")
    var nodeName: String?

    func run() async throws {
        DaemonLogging.bootstrap(verbosity: 0)
        var backendType: BackendType?
        if let backend {
            guard let parsed = BackendType(rawValue: backend) else {
                throw ValidationError("--backend \(backend): use vxlan or host-gw")
            }
            backendType = parsed
        }
        var naming: SubnetFile.Naming?
        if let subnetFileNames {
            switch subnetFileNames {
            case "strait": naming = .strait
            case "flannel": naming = .flannel
            default: throw ValidationError("--subnet-file-names \(subnetFileNames): use strait or flannel")
            }
        }
        let layout: KeyLayout
        do { layout = try KeyLayout(prefix: etcdPrefix) } catch { throw ValidationError(error.message) }
        let options = OverlayOptions(
            store: storeOptions.url, tls: storeOptions.tls, layout: layout, interfaces: iface,
            interfaceRegexes: ifaceRegex, interfaceCanReach: ifaceCanReach, publicIP: publicIp, publicIPv6: publicIpv6,
            clusterCIDR: clusterCidr, subnetLength: subnetLen, subnetFile: subnetFile, subnetFileNaming: naming,
            backend: backendType, vni: vni, vxlanPort: vxlanPort, ipMasq: ipMasq, forwardRules: forwardRules,
            blackholeRoute: blackholeRoute, renewMarginMinutes: subnetLeaseRenewMargin, healthzIP: healthzIp,
            healthzPort: healthzPort, leaseTTL: leaseTtl)
        let leases: (any LeaseSource)? = try kubeSubnetMgr ? kubeLeaseSource() : nil
        let agent = OverlayAgent(options: options, leases: leases)
        do {
            try await Daemon.run([DaemonPart("overlay agent") { try await agent.run() }], handleSignals: true,
                                 logger: Logger(label: "strait-overlay"))
        } catch is DaemonPartFailure {
            throw ExitCode.failure  // logged already, naming the part and the error
        }
    }

    /// `--kube-subnet-mgr`: the Kubernetes API is the one source of leases and of the network config;
    /// the store's flags would name a second one and are refused, naming the flag.
    private func kubeLeaseSource() throws -> KubeLeaseSource {
        let storeSide: [(String, Bool)] = [
            ("--store", storeOptions.store != nil), ("--etcd-prefix", etcdPrefix != KeyLayout.strait.prefix),
            ("--cluster-cidr", clusterCidr != nil), ("--subnet-len", subnetLen != nil), ("--backend", backend != nil),
            ("--vni", vni != nil), ("--vxlan-port", vxlanPort != nil),
        ]
        if let (flag, _) = storeSide.first(where: { $0.1 }) {
            throw ValidationError("\(flag) is for the store's leases; with --kube-subnet-mgr the subnet is the Node's "
                                  + "spec.podCIDRs and the network config is --net-config-path \(netConfigPath)")
        }
        let annotations: NodeAnnotations
        do { annotations = try NodeAnnotations(prefix: kubeAnnotationPrefix) } catch { throw ValidationError(error.message) }
        guard FileManager.default.isReadableFile(atPath: netConfigPath) else {
            let reason = FileManager.default.fileExists(atPath: netConfigPath) ? "cannot be read" : "no such file"
            throw ValidationError("--net-config-path \(netConfigPath): \(reason) (flannel's net-conf.json, e.g. "
                                  + #"{"Network": "10.244.0.0/16", "Backend": {"Type": "vxlan"}})"#)
        }
        let environment = ProcessInfo.processInfo.environment
        let name = nodeName ?? environment["NODE_NAME"].flatMap { $0.isEmpty ? nil : $0 } ?? ProcessInfo.processInfo.hostName
        let connection = try KubeConnection.resolve(kubeconfig: kubeconfigFile, master: kubeApiUrl)
        let client = try KubeClient(connection: connection)
        return KubeLeaseSource(client: client, nodeName: name, netConfigPath: netConfigPath, annotations: annotations)
    }
}

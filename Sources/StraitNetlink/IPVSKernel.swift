/// Where IPVS requests go and virtual services are read back from: the kernel through
/// `IPVSConnection`, or `FakeIPVSKernel` in memory, so code that programs IPVS is tested (and its own
/// CPU cost measured) without a kernel that has IPVS, the same way it runs.
public protocol IPVSKernel: Sendable {
    /// Every virtual service with an address and port. Equivalent: `ipvsadm -Ln`.
    func services() throws -> [IPVSService]
    /// The destinations of `service` with their connection counts; empty when it is not there.
    /// Equivalent: `ipvsadm -Ln -t ADDRESS:PORT`.
    func destinations(of service: IPVSService) throws -> [IPVSDestinationInfo]
    /// Equivalent: `ipvsadm -A -t ADDRESS:PORT -s SCHEDULER`; EEXIST when it is there.
    func addService(_ service: IPVSService) throws
    /// Equivalent: `ipvsadm -E -t ADDRESS:PORT -s SCHEDULER`; ESRCH when it is not there.
    func updateService(_ service: IPVSService) throws
    /// Deletes the service with its destinations. Equivalent: `ipvsadm -D -t ADDRESS:PORT`.
    func deleteService(_ service: IPVSService) throws
    /// Equivalent: `ipvsadm -a -t SERVICE -r ADDRESS:PORT -m -w WEIGHT`; EEXIST when it is there.
    func addDestination(_ destination: IPVSDestination, to service: IPVSService) throws
    /// Equivalent: `ipvsadm -e -t SERVICE -r ADDRESS:PORT -m -w WEIGHT`; ENOENT when it is not there.
    func updateDestination(_ destination: IPVSDestination, in service: IPVSService) throws
    /// Equivalent: `ipvsadm -d -t SERVICE -r ADDRESS:PORT`; ENOENT when it is not there.
    func deleteDestination(_ destination: IPVSDestination, from service: IPVSService) throws
    /// Equivalent: `ipvsadm --set TCP TCPFIN UDP` (a 0 leaves that one as it is).
    func setTimeouts(_ timeouts: IPVSTimeouts) throws
    /// Connection-tracking entries for what IPVS forwards. Equivalent: `sysctl -w net.ipv4.vs.conntrack=1`.
    func enableConnectionTracking() throws
}

extension IPVSConnection: IPVSKernel {}

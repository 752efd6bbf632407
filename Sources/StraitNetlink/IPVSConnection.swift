#if canImport(Glibc)
import Glibc
#endif
import CNetlink

/// The kernel's IPVS table in one network namespace, over generic netlink: virtual services and
/// their destinations, added, edited, deleted and listed. What `ipvsadm` does, as values.
///
/// Requests are checked before they are sent: a request Strait refuses (an unknown scheduler, port 0,
/// a destination in the other family) throws a `NetlinkError` with `detail` and changes nothing.
public final class IPVSConnection: Sendable {
    private let socket: NetlinkSocket
    public let family: IPVSFamily
    /// The namespace given at connection, for the settings IPVS keeps in `/proc/sys`.
    private let namespace: String?

    /// Connects in the calling thread's namespace or, given `namespace`, inside that one (a name under
    /// `/run/netns` or an absolute path). Throws a `NetlinkError` with code `.familyNotFound` when
    /// the kernel has no IPVS.
    public init(namespace: String? = nil) throws {
        socket = try NetlinkSocket(.generic, namespace: namespace)
        family = try IPVSFamily.resolve(on: socket)
        self.namespace = namespace
    }

    // MARK: Services

    /// Every virtual service with an address and port (firewall-mark services are left out).
    /// Equivalent: `ipvsadm -Ln`.
    public func services() throws -> [IPVSService] {
        let request = try IPVSRequest(family: family, command: IPVS_CMD_GET_SERVICE, dump: true)
        return try dump(request, "list IPVS services", "all") { message in
            IPVSAttributes(message: message, max: ipvsCommandAttributeMax)?
                .nested(IPVS_CMD_ATTR_SERVICE, max: ipvsServiceAttributeMax)
                .flatMap(IPVSService.init)
        }
    }

    /// Adds a virtual service; fails with EEXIST when it is there already.
    /// Equivalent: `ipvsadm -A -t ADDRESS:PORT -s SCHEDULER [-p TIMEOUT [-M NETMASK]]`.
    public func addService(_ service: IPVSService) throws {
        try sendService(service, IPVS_CMD_NEW_SERVICE, "add IPVS service")
    }

    /// Changes a virtual service's scheduler and persistence; fails with ESRCH when it is not there.
    /// Equivalent: `ipvsadm -E -t ADDRESS:PORT -s SCHEDULER [-p TIMEOUT [-M NETMASK]]`.
    public func updateService(_ service: IPVSService) throws {
        try sendService(service, IPVS_CMD_SET_SERVICE, "edit IPVS service")
    }

    /// Deletes a virtual service and its destinations; fails with ESRCH when it is not there.
    /// Only protocol, address and port of `service` count. Equivalent: `ipvsadm -D -t ADDRESS:PORT`.
    public func deleteService(_ service: IPVSService) throws {
        let operation = "delete IPVS service"
        let address = try Self.validatedAddress(of: service, operation)
        let request = try IPVSRequest(family: family, command: IPVS_CMD_DEL_SERVICE)
        request.putService(service, address: address, configuration: false)
        try send(request, operation, service.description)
    }

    /// Deletes every virtual service and destination in this namespace. Equivalent: `ipvsadm -C`.
    public func flush() throws {
        try send(try IPVSRequest(family: family, command: IPVS_CMD_FLUSH), "flush IPVS services", "all")
    }

    // MARK: Destinations

    /// The destinations of `service`, with their connection counts. Empty also when the service is
    /// not there: the kernel answers that dump with nothing, not an error (`services()` tells).
    /// Equivalent: `ipvsadm -Ln -t ADDRESS:PORT`.
    public func destinations(of service: IPVSService) throws -> [IPVSDestinationInfo] {
        let operation = "list IPVS destinations"
        let address = try Self.validatedAddress(of: service, operation)
        let request = try IPVSRequest(family: family, command: IPVS_CMD_GET_DEST, dump: true)
        request.putService(service, address: address, configuration: false)
        return try dump(request, operation, service.description) { message in
            IPVSAttributes(message: message, max: ipvsCommandAttributeMax)?
                .nested(IPVS_CMD_ATTR_DEST, max: ipvsDestinationAttributeMax)
                .flatMap { IPVSDestinationInfo($0, serviceFamily: address.family) }
        }
    }

    /// Adds a destination to `service`; fails with EEXIST when it is there already.
    /// Equivalent: `ipvsadm -a -t SERVICE -r ADDRESS:PORT -m -w WEIGHT [-x UPPER] [-y LOWER]`.
    public func addDestination(_ destination: IPVSDestination, to service: IPVSService) throws {
        try sendDestination(destination, service, IPVS_CMD_NEW_DEST, "add IPVS destination", configuration: true)
    }

    /// Changes a destination's weight, forwarding and thresholds; fails with ENOENT when it is not there.
    /// Equivalent: `ipvsadm -e -t SERVICE -r ADDRESS:PORT -m -w WEIGHT`.
    public func updateDestination(_ destination: IPVSDestination, in service: IPVSService) throws {
        try sendDestination(destination, service, IPVS_CMD_SET_DEST, "edit IPVS destination", configuration: true)
    }

    /// Deletes a destination (only its address and port count); fails with ENOENT when it is not there.
    /// Equivalent: `ipvsadm -d -t SERVICE -r ADDRESS:PORT`.
    public func deleteDestination(_ destination: IPVSDestination, from service: IPVSService) throws {
        try sendDestination(destination, service, IPVS_CMD_DEL_DEST, "delete IPVS destination",
                            configuration: false)
    }

    // MARK: Timeouts

    /// The namespace's IPVS connection timeouts. Equivalent: `ipvsadm -L --timeout`.
    public func timeouts() throws -> IPVSTimeouts {
        let operation = "read IPVS timeouts"
        let request = try IPVSRequest(family: family, command: IPVS_CMD_GET_CONFIG)
        let answers = try reply(request, operation, "all") { message -> IPVSTimeouts? in
            guard let attributes = IPVSAttributes(message: message, max: ipvsCommandAttributeMax),
                  let tcp = attributes.u32(IPVS_CMD_ATTR_TIMEOUT_TCP),
                  let tcpFin = attributes.u32(IPVS_CMD_ATTR_TIMEOUT_TCP_FIN),
                  let udp = attributes.u32(IPVS_CMD_ATTR_TIMEOUT_UDP) else { return nil }
            return IPVSTimeouts(tcp: tcp, tcpFin: tcpFin, udp: udp)
        }
        guard let timeouts = answers.first else {
            throw NetlinkError(operation: operation, object: "all", code: .invalidArgument, errno: nil,
                               detail: "the kernel's answer holds no timeouts")
        }
        return timeouts
    }

    /// Sets the namespace's IPVS connection timeouts; a 0 leaves that one as it is. A timeout above
    /// `IPVSTimeouts.maximum` is refused before anything is sent.
    /// Equivalent: `ipvsadm --set TCP TCPFIN UDP`.
    public func setTimeouts(_ timeouts: IPVSTimeouts) throws {
        let operation = "set IPVS timeouts"
        try Self.validate(timeouts, operation)
        let request = try IPVSRequest(family: family, command: IPVS_CMD_SET_CONFIG)
        request.put(IPVS_CMD_ATTR_TIMEOUT_TCP, u32: timeouts.tcp)
        request.put(IPVS_CMD_ATTR_TIMEOUT_TCP_FIN, u32: timeouts.tcpFin)
        request.put(IPVS_CMD_ATTR_TIMEOUT_UDP, u32: timeouts.udp)
        try send(request, operation, timeouts.description)
    }

    /// Refuses a timeout the kernel cannot hold (also `FakeIPVSKernel`'s check).
    static func validate(_ timeouts: IPVSTimeouts, _ operation: String) throws(NetlinkError) {
        for (name, value) in [("tcp", timeouts.tcp), ("tcpfin", timeouts.tcpFin), ("udp", timeouts.udp)]
        where value > IPVSTimeouts.maximum {
            throw refused(operation, "\(timeouts)", "\(name) timeout \(value) s is above the kernel's limit of "
                          + "\(IPVSTimeouts.maximum) s")
        }
    }

    // MARK: Connection tracking

    /// Makes IPVS keep netfilter connection-tracking entries for the connections it forwards, so rules
    /// after it (masquerade in a nat chain) see them. Equivalent: `sysctl -w net.ipv4.vs.conntrack=1`.
    public func enableConnectionTracking() throws {
        let path = "/proc/sys/net/ipv4/vs/conntrack"
        let write = { () throws(NetlinkError) in
            let fd = open(path, O_WRONLY | O_CLOEXEC)
            guard fd >= 0 else {
                throw NetlinkError(operation: "open", object: path, code: .system, errno: errno)
            }
            defer { close(fd) }
            guard Glibc.write(fd, "1", 1) == 1 else {
                throw NetlinkError(operation: "write 1 to", object: path, code: .system, errno: errno)
            }
        }
        if let namespace { try NetworkNamespace.run(named: namespace, write) } else { try write() }
    }

    // MARK: Requests

    private func sendService(_ service: IPVSService, _ command: Int, _ operation: String) throws {
        let address = try Self.validatedAddress(of: service, operation)
        try Self.validateConfiguration(of: service, operation)
        let request = try IPVSRequest(family: family, command: command)
        request.putService(service, address: address, configuration: true)
        do {
            try send(request, operation, service.description)
        } catch let error as NetlinkError where error.errno == ENOENT {
            // The one ENOENT of NEW/SET_SERVICE: the kernel could not find or load the scheduler.
            throw NetlinkError(operation: operation, object: service.description, code: error.code, errno: ENOENT,
                               detail: "scheduler \"\(service.scheduler)\" is not available in this kernel (ENOENT)")
        }
    }

    private func sendDestination(_ destination: IPVSDestination, _ service: IPVSService, _ command: Int,
                                 _ operation: String, configuration: Bool) throws {
        let (serviceAddress, address) = try Self.validatedAddresses(of: destination, in: service, operation,
                                                                     configuration: configuration)
        let request = try IPVSRequest(family: family, command: command)
        request.putService(service, address: serviceAddress, configuration: false)
        request.putDestination(destination, address: address, configuration: configuration)
        try send(request, operation, "\(destination) in \(service)")
    }

    /// The service's and the destination's addresses, once both are checked as a request of
    /// `operation` needs them (`configuration`: weight and thresholds too).
    static func validatedAddresses(of destination: IPVSDestination, in service: IPVSService, _ operation: String,
                                   configuration: Bool) throws(NetlinkError) -> (IPVSAddress, IPVSAddress) {
        func object() -> String { "\(destination) in \(service)" }
        let serviceAddress = try validatedAddress(of: service, operation)
        guard let address = IPVSAddress(destination.address) else {
            throw refused(operation, object(), "\"\(destination.address)\" is not an IP address")
        }
        guard address.family == serviceAddress.family else {
            throw refused(operation, object(), "destination and service are in different address families")
        }
        guard destination.port != 0 else { throw refused(operation, object(), "port 0 is not a destination port") }
        if configuration {
            guard destination.weight >= 0 else {
                throw refused(operation, object(), "weight \(destination.weight) is negative")
            }
            guard destination.upperThreshold == 0 || destination.lowerThreshold <= destination.upperThreshold else {
                throw refused(operation, object(), "lower threshold \(destination.lowerThreshold) is above "
                              + "upper threshold \(destination.upperThreshold)")
            }
        }
        return (serviceAddress, address)
    }

    /// Sends a request and waits for the kernel's answer.
    private func send(_ request: IPVSRequest, _ operation: String, _ object: @autoclosure () -> String) throws {
        try request.checked(operation, object())
        try socket.call(operation, object()) { handle in
            let sent = nl_send_auto(handle, request.message)
            return sent < 0 ? sent : nl_wait_for_ack(handle)
        }
    }

    /// Sends a dump request and turns every answer into a value with `parse` (nil skips an answer).
    private func dump<Value>(_ request: IPVSRequest, _ operation: String, _ object: String,
                             _ parse: @escaping (OpaquePointer) -> Value?) throws -> [Value] {
        try receive(request, operation, object, acknowledged: false, parse)
    }

    /// Sends a request the kernel answers with one message (not a dump) and turns the answer into a
    /// value with `parse`; the acknowledgement that follows the answer is read too, so it does not
    /// wait in the socket for the next request.
    private func reply<Value>(_ request: IPVSRequest, _ operation: String, _ object: String,
                              _ parse: @escaping (OpaquePointer) -> Value?) throws -> [Value] {
        try receive(request, operation, object, acknowledged: true, parse)
    }

    private func receive<Value>(_ request: IPVSRequest, _ operation: String, _ object: String, acknowledged: Bool,
                                _ parse: @escaping (OpaquePointer) -> Value?) throws -> [Value] {
        try request.checked(operation, object)
        var values: [Value] = []
        let receiver = DumpReceiver { message in
            if let value = parse(message) { values.append(value) }
        }
        try withExtendedLifetime(receiver) { () throws(NetlinkError) -> Void in
            try socket.call(operation, object) { handle in
                let sent = nl_send_auto(handle, request.message)
                if sent < 0 { return sent }
                // A clone of the socket's callbacks keeps its error callback (the kernel's errno).
                guard let callbacks = nl_cb_clone(nl_socket_get_cb(handle)) else { return -NLE_NOMEM }
                defer { nl_cb_put(callbacks) }
                nl_cb_set(callbacks, NL_CB_VALID, NL_CB_CUSTOM, { message, context in
                    guard let message, let context else { return Int32(NL_SKIP.rawValue) }
                    Unmanaged<DumpReceiver>.fromOpaque(context).takeUnretainedValue().receive(message)
                    return Int32(NL_OK.rawValue)
                }, Unmanaged.passUnretained(receiver).toOpaque())
                let received = nl_recvmsgs(handle, callbacks)
                return received < 0 || !acknowledged ? received : nl_wait_for_ack(handle)
            }
        }
        return values
    }

    // MARK: Checks

    static func validatedAddress(of service: IPVSService, _ operation: String) throws(NetlinkError) -> IPVSAddress {
        guard let address = IPVSAddress(service.address) else {
            throw refused(operation, service.description, "\"\(service.address)\" is not an IP address")
        }
        guard service.port != 0 else { throw refused(operation, service.description, "port 0 is not a service port") }
        return address
    }

    static func validateConfiguration(of service: IPVSService, _ operation: String) throws(NetlinkError) {
        guard Self.schedulers.contains(service.scheduler) else {
            throw refused(operation, service.description, "unknown scheduler \"\(service.scheduler)\" (known: "
                          + Self.schedulers.sorted().joined(separator: ", ") + ")")
        }
        if let timeout = service.persistenceTimeout, timeout == 0 {
            throw refused(operation, service.description, "persistence timeout 0 (use nil for no persistence)")
        }
        if let length = service.persistencePrefixLength {
            let full: UInt8 = service.isIPv6 ? 128 : 32
            guard (1...full).contains(length) else {
                throw refused(operation, service.description, "persistence prefix length \(length) is not 1-\(full)")
            }
        }
    }

    /// The schedulers Linux ships (net/netfilter/ipvs/ip_vs_*.c); any other name cannot load.
    static let schedulers: Set<String> = [
        "rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh", "sed", "nq", "fo", "ovf", "mh", "twos",
    ]
}

/// A request Strait refuses before it reaches the kernel.
private func refused(_ operation: String, _ object: String, _ detail: String) -> NetlinkError {
    NetlinkError(operation: operation, object: object, code: .invalidArgument, errno: EINVAL, detail: detail)
}

/// Where libnl's callback for each dump answer lands; lives while the dump runs.
private final class DumpReceiver {
    let receive: (OpaquePointer) -> Void
    init(_ receive: @escaping (OpaquePointer) -> Void) { self.receive = receive }
}

#if canImport(Glibc)
import Glibc
#endif
import CNetlink

// The attribute table sizes, from linux/ip_vs.h (whose *_MAX macros Swift cannot import).
let ipvsCommandAttributeMax = Int32(__IPVS_CMD_ATTR_MAX) - 1
let ipvsServiceAttributeMax = Int32(__IPVS_SVC_ATTR_MAX) - 1
let ipvsDestinationAttributeMax = Int32(__IPVS_DEST_ATTR_MAX) - 1

/// An IP address as IPVS carries it: a family and the 16 bytes of the kernel's `union nf_inet_addr`
/// (an IPv4 address fills the first four).
struct IPVSAddress: Equatable {
    let family: Int32
    let bytes: [UInt8]

    /// Parses "10.0.0.1" or "fd00::1"; nil when `text` is neither.
    init?(_ text: String) {
        var buffer = [UInt8](repeating: 0, count: 16)
        if inet_pton(AF_INET, text, &buffer) == 1 {
            family = AF_INET
        } else if inet_pton(AF_INET6, text, &buffer) == 1 {
            family = AF_INET6
        } else {
            return nil
        }
        bytes = buffer
    }

    /// Reads `count` bytes at `data` (4 or at least 16, as the family needs); nil when too short.
    init?(family: Int32, data: UnsafeRawPointer, count: Int) {
        let needed = family == AF_INET ? 4 : family == AF_INET6 ? 16 : Int.max
        guard count >= needed else { return nil }
        var buffer = [UInt8](repeating: 0, count: 16)
        for index in 0..<needed { buffer[index] = data.load(fromByteOffset: index, as: UInt8.self) }
        self.family = family
        self.bytes = buffer
    }

    /// The canonical text `inet_ntop` writes.
    var text: String {
        var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        _ = inet_ntop(family, bytes, &buffer, socklen_t(buffer.count))
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

/// One IPVS request: a generic-netlink message for one command, filled with attributes, freed when done.
final class IPVSRequest {
    let message: OpaquePointer
    /// The first libnl error while adding attributes (only a message that ran out of room fails).
    private var failure: Int32 = 0

    init(family: IPVSFamily, command: Int, dump: Bool = false) throws(NetlinkError) {
        message = try allocated(nlmsg_alloc(), "IPVS request")
        let header = genlmsg_put(message, UInt32(NL_AUTO_PORT), UInt32(NL_AUTO_SEQ), family.id, 0,
                                 dump ? NLM_F_DUMP : 0, UInt8(command), UInt8(IPVS_GENL_VERSION))
        if header == nil { failure = -NLE_NOMEM }
    }

    deinit { nlmsg_free(message) }

    /// Throws when an attribute did not fit, naming `operation` and `object`.
    func checked(_ operation: String, _ object: @autoclosure () -> String) throws(NetlinkError) {
        try netlink(operation, object(), failure)
    }

    func put(_ type: Int, u16 value: UInt16) { record(nla_put_u16(message, Int32(type), value)) }
    func put(_ type: Int, u32 value: UInt32) { record(nla_put_u32(message, Int32(type), value)) }
    func put(_ type: Int, string value: String) { record(nla_put_string(message, Int32(type), value)) }
    func put(_ type: Int, bytes: [UInt8]) {
        record(bytes.withUnsafeBytes { nla_put(message, Int32(type), Int32($0.count), $0.baseAddress) })
    }

    /// Adds a nested attribute `type` holding what `body` puts.
    func nest(_ type: Int, _ body: () -> Void) {
        guard let start = nla_nest_start(message, Int32(type)) else { return record(-NLE_NOMEM) }
        body()
        record(nla_nest_end(message, start))
    }

    private func record(_ result: Int32) {
        if result < 0 && failure == 0 { failure = result }
    }

    /// The service's identity (family, protocol, address, port) and, when `configuration` is set,
    /// everything the kernel requires to create or edit it. `address` is the service's, parsed.
    func putService(_ service: IPVSService, address: IPVSAddress, configuration: Bool) {
        nest(IPVS_CMD_ATTR_SERVICE) {
            put(IPVS_SVC_ATTR_AF, u16: UInt16(address.family))
            put(IPVS_SVC_ATTR_PROTOCOL, u16: service.ipProtocol.rawValue)
            put(IPVS_SVC_ATTR_ADDR, bytes: address.bytes)
            put(IPVS_SVC_ATTR_PORT, u16: service.port.bigEndian)
            guard configuration else { return }
            put(IPVS_SVC_ATTR_SCHED_NAME, string: service.scheduler)
            // struct ip_vs_flags { flags; mask }: every flag is ours to set or clear.
            let flags: UInt32 = service.persistenceTimeout == nil ? 0 : UInt32(IP_VS_SVC_F_PERSISTENT)
            put(IPVS_SVC_ATTR_FLAGS, bytes: bytes(of: flags) + bytes(of: UInt32.max))
            put(IPVS_SVC_ATTR_TIMEOUT, u32: service.persistenceTimeout ?? 0)
            // IPv4: a netmask in network order; IPv6: the prefix length itself.
            if address.family == AF_INET {
                let length = UInt32(service.persistencePrefixLength ?? 32)
                let mask: UInt32 = length == 0 ? 0 : UInt32.max << (32 - length)
                put(IPVS_SVC_ATTR_NETMASK, u32: mask.bigEndian)
            } else {
                put(IPVS_SVC_ATTR_NETMASK, u32: UInt32(service.persistencePrefixLength ?? 128))
            }
        }
    }

    /// The destination's identity (address, port) and, when `configuration` is set, its settings.
    func putDestination(_ destination: IPVSDestination, address: IPVSAddress, configuration: Bool) {
        nest(IPVS_CMD_ATTR_DEST) {
            put(IPVS_DEST_ATTR_ADDR_FAMILY, u16: UInt16(address.family))
            put(IPVS_DEST_ATTR_ADDR, bytes: address.bytes)
            put(IPVS_DEST_ATTR_PORT, u16: destination.port.bigEndian)
            guard configuration else { return }
            put(IPVS_DEST_ATTR_FWD_METHOD, u32: destination.forwarding.rawValue)
            put(IPVS_DEST_ATTR_WEIGHT, u32: UInt32(bitPattern: destination.weight))
            put(IPVS_DEST_ATTR_U_THRESH, u32: destination.upperThreshold)
            put(IPVS_DEST_ATTR_L_THRESH, u32: destination.lowerThreshold)
        }
    }
}

/// The bytes of `value` in host order, as the kernel's structs hold them.
private func bytes(of value: UInt32) -> [UInt8] {
    withUnsafeBytes(of: value) { Array($0) }
}

/// The attributes of one received message or nested attribute, by type. Every read checks the
/// payload's length, so a short or missing attribute reads as nil instead of past its end.
struct IPVSAttributes {
    private var table: [UnsafeMutablePointer<nlattr>?]

    /// The top-level attributes of a generic-netlink message.
    init?(message: OpaquePointer, max: Int32) {
        table = Array(repeating: nil, count: Int(max) + 1)
        guard genlmsg_parse(nlmsg_hdr(message), 0, &table, max, nil) >= 0 else { return nil }
    }

    /// The attributes nested in `type`.
    func nested(_ type: Int, max: Int32) -> IPVSAttributes? {
        guard let attribute = self[type] else { return nil }
        var inner = IPVSAttributes(empty: max)
        guard nla_parse_nested(&inner.table, max, attribute, nil) >= 0 else { return nil }
        return inner
    }

    private init(empty max: Int32) {
        table = Array(repeating: nil, count: Int(max) + 1)
    }

    private subscript(type: Int) -> UnsafeMutablePointer<nlattr>? {
        type < table.count ? table[type] : nil
    }

    func u16(_ type: Int) -> UInt16? {
        guard let attribute = self[type], nla_len(attribute) >= 2 else { return nil }
        return nla_get_u16(attribute)
    }

    func u32(_ type: Int) -> UInt32? {
        guard let attribute = self[type], nla_len(attribute) >= 4 else { return nil }
        return nla_get_u32(attribute)
    }

    /// A NUL-terminated string attribute.
    func string(_ type: Int) -> String? {
        guard let attribute = self[type], nla_len(attribute) > 0 else { return nil }
        let raw = UnsafeRawBufferPointer(start: nla_data(attribute), count: Int(nla_len(attribute)))
        return String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
    }

    func address(_ type: Int, family: Int32) -> IPVSAddress? {
        guard let attribute = self[type], let data = nla_data(attribute) else { return nil }
        return IPVSAddress(family: family, data: data, count: Int(nla_len(attribute)))
    }
}

extension IPVSService {
    /// The service in a GET_SERVICE answer; nil for what this type does not describe (firewall-mark
    /// services, other protocols) or an answer too short to read.
    init?(_ attributes: IPVSAttributes) {
        guard let family = attributes.u16(IPVS_SVC_ATTR_AF).map(Int32.init),
              let ipProtocol = attributes.u16(IPVS_SVC_ATTR_PROTOCOL).flatMap(IPVSProtocol.init),
              let address = attributes.address(IPVS_SVC_ATTR_ADDR, family: family),
              let port = attributes.u16(IPVS_SVC_ATTR_PORT).map(UInt16.init(bigEndian:)), port != 0,
              let scheduler = attributes.string(IPVS_SVC_ATTR_SCHED_NAME)
        else { return nil }
        let flags = attributes.u32(IPVS_SVC_ATTR_FLAGS) ?? 0
        let persistent = flags & UInt32(IP_VS_SVC_F_PERSISTENT) != 0
        let netmask = attributes.u32(IPVS_SVC_ATTR_NETMASK)
        var prefix: UInt8?
        if let netmask {
            // IPv4: the leading ones of a network-order mask; IPv6: the prefix length itself.
            prefix = family == AF_INET ? UInt8((~UInt32(bigEndian: netmask)).leadingZeroBitCount)
                : UInt8(clamping: netmask)
        }
        let full: UInt8 = family == AF_INET ? 32 : 128
        self.init(ipProtocol, address: address.text, port: port, scheduler: scheduler,
                  persistenceTimeout: persistent ? attributes.u32(IPVS_SVC_ATTR_TIMEOUT) ?? 0 : nil,
                  persistencePrefixLength: persistent && prefix != full ? prefix : nil)
    }
}

extension IPVSDestinationInfo {
    /// The destination in a GET_DEST answer of a service in `serviceFamily`; nil when too short to read.
    init?(_ attributes: IPVSAttributes, serviceFamily: Int32) {
        let family = attributes.u16(IPVS_DEST_ATTR_ADDR_FAMILY).map(Int32.init) ?? serviceFamily
        guard let address = attributes.address(IPVS_DEST_ATTR_ADDR, family: family),
              let port = attributes.u16(IPVS_DEST_ATTR_PORT).map(UInt16.init(bigEndian:)),
              let method = attributes.u32(IPVS_DEST_ATTR_FWD_METHOD),
              let forwarding = IPVSForwarding(rawValue: method & UInt32(IP_VS_CONN_F_FWD_MASK)),
              let weight = attributes.u32(IPVS_DEST_ATTR_WEIGHT)
        else { return nil }
        let destination = IPVSDestination(
            address: address.text, port: port, weight: Int32(bitPattern: weight), forwarding: forwarding,
            upperThreshold: attributes.u32(IPVS_DEST_ATTR_U_THRESH) ?? 0,
            lowerThreshold: attributes.u32(IPVS_DEST_ATTR_L_THRESH) ?? 0)
        self.init(destination: destination,
                  activeConnections: attributes.u32(IPVS_DEST_ATTR_ACTIVE_CONNS) ?? 0,
                  inactiveConnections: attributes.u32(IPVS_DEST_ATTR_INACT_CONNS) ?? 0,
                  persistentConnections: attributes.u32(IPVS_DEST_ATTR_PERSIST_CONNS) ?? 0)
    }
}

import CNftables
import Synchronization

import StraitSystem

#if canImport(Glibc)
import Glibc
#endif

/// A NETLINK_NETFILTER socket to the kernel's nftables, in the namespace it was opened in.
/// Commits transactions as one atomic batch and reads tables back. Safe to share: calls are serialized.
public final class NFTConnection: Sendable {
    private let socket: Socket
    private let lock = Mutex(())

    /// Opens a socket in the current network namespace.
    public init() throws(NFTError) {
        socket = try Socket()
    }

    /// Opens a socket inside the named namespace (`/run/netns/NAME`); it stays there whoever uses it.
    /// Equivalent: the socket `ip netns exec NAME nft …` would use.
    public convenience init(namespace: String) throws(NFTError) {
        let opened: Socket
        do {
            opened = try NamespaceThread.run(in: namespace) { try Socket() }
        } catch let error as NFTError {
            throw error
        } catch let failure as NamespaceThread.Failure {
            throw NFTError(operation: "\(failure.operation) \(failure.path)", errno: failure.errno)
        } catch {
            throw NFTError(operation: "open netlink socket in network namespace \(namespace)", errno: EINVAL,
                           detail: "\(error)")
        }
        self.init(opened)
    }

    private init(_ socket: Socket) {
        self.socket = socket
    }

    /// Applies every change of `transaction` in one batch: all of them, or (on any error) none.
    /// The error names the first change the kernel refused.
    /// Equivalent: `nft -f FILE`.
    public func commit(_ transaction: Transaction) throws(NFTError) {
        guard !transaction.isEmpty else { return }
        try lock.withLock { _ throws(NFTError) in
            let buffer = BatchBuffer(firstSequence: socket.takeSequences())
            var encoder = BatchEncoder(buffer: buffer)
            try encoder.encode(transaction)
            socket.reserveSequences(upTo: buffer.nextSequence)
            try socket.send(buffer)
        }
    }

    /// Reads a table back: its chains, named sets with their elements, and rules.
    /// Returns nil if the table does not exist. Equivalent: `nft list table FAMILY NAME`.
    public func list(_ table: Table) throws(NFTError) -> TableContents? {
        try lock.withLock { _ throws(NFTError) in try TableDump(socket: socket).list(table) }
    }

    /// Every table, of one family or of all. Equivalent: `nft list tables`.
    public func tables(_ family: Family? = nil) throws(NFTError) -> [Table] {
        try lock.withLock { _ throws(NFTError) in
            try TableDump(socket: socket).tables(family)
        }
    }
}

/// The mnl socket and its bookkeeping. Only touched under the connection's lock.
final class Socket: @unchecked Sendable {
    let handle: OpaquePointer
    let portID: UInt32
    private var sequence: UInt32
    private var sendBufferSize = 0
    private var receiveBufferSize = 0

    init() throws(NFTError) {
        guard let handle = mnl_socket_open(NETLINK_NETFILTER) else {
            throw NFTError(operation: "open netfilter netlink socket", errno: errno)
        }
        guard mnl_socket_bind(handle, 0, pid_t(MNL_SOCKET_AUTOPID)) == 0 else {
            let code = errno
            mnl_socket_close(handle)
            throw NFTError(operation: "bind netfilter netlink socket", errno: code)
        }
        self.handle = handle
        portID = mnl_socket_get_portid(handle)
        sequence = UInt32(truncatingIfNeeded: time(nil))
        let fd = mnl_socket_get_fd(handle)
        var on: Int32 = 1
        // Error messages carry the kernel's reason, and not a copy of a possibly huge request.
        _ = setsockopt(fd, SOL_NETLINK, NETLINK_EXT_ACK, &on, socklen_t(MemoryLayout<Int32>.size))
        _ = setsockopt(fd, SOL_NETLINK, NETLINK_CAP_ACK, &on, socklen_t(MemoryLayout<Int32>.size))
    }

    deinit { mnl_socket_close(handle) }

    var fd: Int32 { mnl_socket_get_fd(handle) }

    func takeSequences() -> UInt32 { sequence }
    func reserveSequences(upTo next: UInt32) { sequence = next }

    /// Sends a whole batch in one `sendmsg`, an iovec of its chunks (the kernel applies a batch per
    /// send, and copies the iovec into one message; equivalent: what `nft -f` sends), and reads every
    /// acknowledgement; the first error, mapped back to its message's object, is thrown.
    func send(_ buffer: BatchBuffer) throws(NFTError) {
        let size = buffer.size
        // Root may exceed the sysctl limits (…BUFFORCE): the batch must fit the send buffer whole, and
        // every acknowledgement must fit the receive buffer, or the kernel drops them (ENOBUFS).
        try grow(&sendBufferSize, to: size + 65536, option: SO_SNDBUFFORCE, "set netlink send buffer")
        try grow(&receiveBufferSize, to: max(1 << 20, buffer.acknowledgedCount * 2048),
                 option: SO_RCVBUFFORCE, "set netlink receive buffer")
        var address = sockaddr_nl()
        address.nl_family = sa_family_t(AF_NETLINK)
        let fd = self.fd
        let sent = try netlink("send nftables batch of \(size) bytes") {
            buffer.withIOVectors { vectors in
                withUnsafeMutablePointer(to: &address) { address in
                    var message = msghdr()
                    message.msg_name = UnsafeMutableRawPointer(address)
                    message.msg_namelen = socklen_t(MemoryLayout<sockaddr_nl>.size)
                    message.msg_iov = vectors.baseAddress
                    message.msg_iovlen = vectors.count
                    return sendmsg(fd, &message, 0)
                }
            }
        }
        guard sent == size else {
            throw NFTError(operation: "send nftables batch of \(size) bytes", errno: EMSGSIZE)
        }
        try receiveAcknowledgements(buffer)
    }

    private func grow(_ current: inout Int, to wanted: Int, option: Int32,
                               _ operation: String) throws(NFTError) {
        guard wanted > current else { return }
        var value = Int32(clamping: wanted)
        let fd = self.fd
        _ = try netlink(operation) { setsockopt(fd, SOL_SOCKET, option, &value, socklen_t(MemoryLayout<Int32>.size)) }
        current = wanted
    }

    private func receiveAcknowledgements(_ buffer: BatchBuffer) throws(NFTError) {
        var pending = Set(buffer.operations.keys)
        var errors: [(sequence: UInt32, error: NFTError)] = []
        var storage = [UInt8](repeating: 0, count: 1 << 16)
        var waited = 0
        while !pending.isEmpty {
            // The kernel handles the batch inside sendmsg, so replies are already queued: read without
            // blocking, and wait briefly only if some are still missing.
            let received = storage.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
            if received < 0 {
                let code = errno
                if code == EINTR { continue }
                if code == EAGAIN || code == EWOULDBLOCK {
                    if !errors.isEmpty || waited >= 50 { break }
                    waited += 1
                    var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
                    _ = poll(&poller, 1, 100)
                    continue
                }
                throw NFTError(operation: "receive nftables acknowledgements", errno: code)
            }
            for reply in NetlinkReplies(storage, count: received) where reply.type == NLMSG_ERROR {
                guard let sequence = reply.acknowledgedSequence, let code = reply.errorCode else { continue }
                pending.remove(sequence)
                if code != 0 {
                    let operation = buffer.operations[sequence]
                        ?? (sequence == buffer.firstSequence ? "commit nftables batch" : "nftables message \(sequence)")
                    errors.append((sequence, NFTError(operation: operation, errno: Int32(-code), detail: reply.extendedMessage)))
                }
            }
        }
        if let first = errors.min(by: { $0.sequence &- buffer.firstSequence < $1.sequence &- buffer.firstSequence }) {
            throw first.error
        }
        if !pending.isEmpty {
            throw NFTError(operation: "receive nftables acknowledgements", errno: ETIMEDOUT,
                           detail: "\(pending.count) of \(buffer.acknowledgedCount) messages unacknowledged")
        }
    }
}

/// The one door to the kernel: retries EINTR, turns -1 into an error naming the operation.
@discardableResult
func netlink<R: BinaryInteger>(_ operation: @autoclosure () -> String, _ call: () -> R) throws(NFTError) -> R {
    while true {
        let result = call()
        if result >= 0 { return result }
        let code = errno
        if code == EINTR { continue }
        throw NFTError(operation: operation(), errno: code)
    }
}

/// The netlink messages in one received datagram.
struct NetlinkReplies: Sequence {
    let bytes: [UInt8]
    let count: Int

    init(_ bytes: [UInt8], count: Int) {
        self.bytes = bytes
        self.count = count
    }

    struct Reply {
        let bytes: ArraySlice<UInt8>
        let type: Int32
        let flags: UInt16

        private func u32(_ offset: Int) -> UInt32? {
            let start = bytes.startIndex + offset
            guard start + 4 <= bytes.endIndex else { return nil }
            return bytes[start..<(start + 4)].withUnsafeBytes { $0.loadUnaligned(as: UInt32.self) }
        }

        /// For NLMSG_ERROR: 0 (an ack) or a negative errno.
        var errorCode: Int32? { u32(16).map { Int32(bitPattern: $0) } }
        /// For NLMSG_ERROR: the sequence number of the request it answers.
        var acknowledgedSequence: UInt32? { u32(16 + 4 + 8) }

        /// The kernel's extended ack text (NLMSGERR_ATTR_MSG), when it sent one.
        var extendedMessage: String? {
            guard flags & UInt16(NLM_F_ACK_TLVS) != 0 else { return nil }
            let requestLength = flags & UInt16(NLM_F_CAPPED) != 0 ? 16 : Int(u32(16 + 4) ?? 16)
            var offset = 16 + 4 + ((requestLength + 3) & ~3)
            while let header = u32(offset) {
                let length = Int(header & 0xffff), type = header >> 16
                guard length >= 4, bytes.startIndex + offset + length <= bytes.endIndex else { return nil }
                if type == 1 {
                    let start = bytes.startIndex + offset + 4
                    return String(decoding: bytes[start..<(start + length - 4)].prefix { $0 != 0 }, as: UTF8.self)
                }
                offset += (length + 3) & ~3
            }
            return nil
        }
    }

    func makeIterator() -> AnyIterator<Reply> {
        var offset = 0
        return AnyIterator {
            guard offset + 16 <= count else { return nil }
            let length = bytes[offset..<(offset + 16)].withUnsafeBytes { $0.loadUnaligned(as: UInt32.self) }
            let type = bytes[offset..<(offset + 16)].withUnsafeBytes { $0.loadUnaligned(fromByteOffset: 4, as: UInt16.self) }
            let flags = bytes[offset..<(offset + 16)].withUnsafeBytes { $0.loadUnaligned(fromByteOffset: 6, as: UInt16.self) }
            guard length >= 16, offset + Int(length) <= count else { return nil }
            let reply = Reply(bytes: bytes[offset..<(offset + Int(length))], type: Int32(type), flags: flags)
            offset += (Int(length) + 3) & ~3
            return reply
        }
    }
}

import CNftables

#if canImport(Glibc)
import Glibc
#endif

/// One nfnetlink batch being written: BEGIN, the messages, END, in chunks of `chunkSize` bytes
/// that are never moved, sent with one `sendmsg` of an iovec per chunk (the kernel copies the
/// iovec into one message and applies a batch per send). A buffer that doubled would hold the old
/// and the new copy at its peak and copy every byte again at each doubling.
/// Remembers what each message's sequence number stands for, so an error can name its object.
final class BatchBuffer {
    /// Room guaranteed before each message written by libnftnl, which does not check bounds: set
    /// element messages stop near 64 KiB, the largest rule is far smaller.
    static let messageRoom = 160 * 1024
    static let chunkSize = 1 << 20

    /// The chunks written so far, each with the bytes used in it; the last is being written.
    private(set) var chunks: [(start: UnsafeMutableRawPointer, used: Int)] = []
    private(set) var nextSequence: UInt32
    /// What each acknowledged message does, by sequence number.
    private(set) var operations: [UInt32: String] = [:]
    let firstSequence: UInt32
    private(set) var size = 0

    init(firstSequence: UInt32) {
        self.firstSequence = firstSequence
        self.nextSequence = firstSequence
    }

    deinit {
        for chunk in chunks { chunk.start.deallocate() }
    }

    var acknowledgedCount: Int { operations.count }

    /// The room left in the current chunk.
    private var room: Int { chunks.last.map { Self.chunkSize - $0.used } ?? 0 }

    /// Writes one message with the next sequence number; `build` gets the space (at least
    /// `messageRoom` bytes) and the number, and leaves the message's length in its header.
    /// `operation` names it for errors; nil for BEGIN/END, which the kernel does not acknowledge.
    func append(_ operation: String?, _ build: (UnsafeMutablePointer<CChar>, UInt32) -> Void) {
        append(operation, room: Self.messageRoom) { buffer, _, sequence in build(buffer, sequence) }
    }

    /// Writes one message of at most `room` bytes; `build` gets the space, its size and the number.
    func append(_ operation: String?, room wanted: Int,
                _ build: (UnsafeMutablePointer<CChar>, Int, UInt32) -> Void) {
        precondition(wanted <= Self.chunkSize, "nftables message room larger than a batch chunk")
        if room < wanted {
            chunks.append((UnsafeMutableRawPointer.allocate(byteCount: Self.chunkSize, alignment: 16), 0))
        }
        let sequence = nextSequence
        nextSequence &+= 1
        let index = chunks.count - 1
        let start = chunks[index].start + chunks[index].used
        start.bindMemory(to: nlmsghdr.self, capacity: 1).pointee.nlmsg_len = 0
        build(start.assumingMemoryBound(to: CChar.self), room, sequence)
        // Netlink lengths are 4-byte aligned (libmnl keeps them so), so the next message starts aligned.
        let length = (Int(start.assumingMemoryBound(to: nlmsghdr.self).pointee.nlmsg_len) + 3) & ~3
        precondition(length >= MemoryLayout<nlmsghdr>.size && length <= room,
                     "nftables message larger than the reserved room")
        chunks[index].used += length
        size += length
        if let operation { operations[sequence] = operation }
    }

    /// Calls `body` with one iovec per chunk, in order.
    func withIOVectors<R>(_ body: (UnsafeMutableBufferPointer<iovec>) -> R) -> R {
        var vectors = chunks.map { iovec(iov_base: $0.start, iov_len: $0.used) }
        return vectors.withUnsafeMutableBufferPointer { body($0) }
    }
}

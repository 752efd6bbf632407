import CNftables

/// One nfnetlink batch being written: BEGIN, the messages, END, in a buffer that grows as needed,
/// so a single `sendmsg` carries the whole transaction (the kernel applies a batch per send).
/// Remembers what each message's sequence number stands for, so an error can name its object.
final class BatchBuffer {
    /// Room guaranteed before each message: set element messages stop near 64 KiB.
    static let messageRoom = 160 * 1024

    private(set) var storage: UnsafeMutableRawPointer
    private var capacity: Int
    private var batch: OpaquePointer
    private var messageCount = 0
    private(set) var nextSequence: UInt32
    /// What each acknowledged message does, by sequence number.
    private(set) var operations: [UInt32: String] = [:]
    let firstSequence: UInt32

    init(firstSequence: UInt32, capacity: Int = 1 << 20) {
        self.capacity = capacity
        self.storage = UnsafeMutableRawPointer.allocate(byteCount: capacity, alignment: 16)
        self.batch = mnl_nlmsg_batch_start(storage, capacity)
        self.firstSequence = firstSequence
        self.nextSequence = firstSequence
    }

    deinit {
        mnl_nlmsg_batch_stop(batch)
        storage.deallocate()
    }

    var size: Int { mnl_nlmsg_batch_size(batch) }
    var acknowledgedCount: Int { operations.count }

    /// Writes one message with the next sequence number; `build` gets the space and the number.
    /// `operation` names it for errors; nil for BEGIN/END, which the kernel does not acknowledge.
    func append(_ operation: String?, _ build: (UnsafeMutablePointer<CChar>, UInt32) -> Void) {
        if size + Self.messageRoom > capacity { grow(to: max(capacity * 2, size + Self.messageRoom)) }
        let sequence = nextSequence
        nextSequence &+= 1
        build(mnl_nlmsg_batch_current(batch).assumingMemoryBound(to: CChar.self), sequence)
        if let operation { operations[sequence] = operation }
        let fits = mnl_nlmsg_batch_next(batch)
        precondition(fits, "nftables message larger than the reserved room")
        messageCount += 1
    }

    /// Moves the written messages to a bigger buffer and replays the batch cursor over them.
    private func grow(to newCapacity: Int) {
        let used = size
        let bigger = UnsafeMutableRawPointer.allocate(byteCount: newCapacity, alignment: 16)
        bigger.copyMemory(from: storage, byteCount: used)
        mnl_nlmsg_batch_stop(batch)
        storage.deallocate()
        storage = bigger
        capacity = newCapacity
        batch = mnl_nlmsg_batch_start(storage, capacity)
        for _ in 0..<messageCount { _ = mnl_nlmsg_batch_next(batch) }
    }
}

import SafetyGuard
import Synchronization

/// The latest approved command of one channel, handed from the dispatch thread (the one producer)
/// to its back end's writer thread (the one consumer) without a lock and without allocating: a
/// triple buffer. Three preallocated slots; the producer owns one (back), the consumer one (front),
/// and the third (middle) is named by an atomic word with a dirty bit. Publishing writes the back
/// slot and swaps it with the middle; taking swaps the front with the middle when it is dirty. A
/// command not yet taken when a newer one is published is superseded (counted): the writer only
/// ever sends the newest per channel.
///
/// One producer at a time: the runtime's writes are serialised by its control lock.
final class ChannelMailbox: @unchecked Sendable {
    // @unchecked: `slots` is only touched as the protocol above allows — the producer writes only
    // its back slot, the consumer reads only its front slot, and the exchanges on `middle`
    // (acquire-release) hand slots over with their contents.
    private let slots: UnsafeMutablePointer<ApprovedCommand?>
    private static let dirty: UInt8 = 0b100
    private static let indexMask: UInt8 = 0b011
    private let middle = Atomic<UInt8>(1)
    /// Owned by the producer (relaxed: only ever read by it).
    private let back = Atomic<UInt8>(0)
    /// Owned by the consumer.
    private let front = Atomic<UInt8>(2)
    /// Commands replaced by a newer one before the writer took them.
    let superseded = Atomic<UInt64>(0)
    let published = Atomic<UInt64>(0)
    let taken = Atomic<UInt64>(0)

    init() {
        slots = .allocate(capacity: 3)
        slots.initialize(repeating: nil, count: 3)
    }

    deinit {
        slots.deinitialize(count: 3)
        slots.deallocate()
    }

    /// Producer side. Real-time safe: two stores and one atomic exchange; never waits.
    @inline(__always)
    func publish(_ command: ApprovedCommand) {
        let mine = back.load(ordering: .relaxed)
        slots[Int(mine)] = command
        let old = middle.exchange(mine | Self.dirty, ordering: .acquiringAndReleasing)
        back.store(old & Self.indexMask, ordering: .relaxed)
        published.add(1, ordering: .relaxed)
        if old & Self.dirty != 0 { superseded.add(1, ordering: .relaxed) }
    }

    /// Consumer side: the newest command published since the last take, if any.
    @inline(__always)
    func take() -> ApprovedCommand? {
        guard middle.load(ordering: .relaxed) & Self.dirty != 0 else { return nil }
        let mine = front.load(ordering: .relaxed)
        let old = middle.exchange(mine, ordering: .acquiringAndReleasing)
        let fresh = old & Self.indexMask
        front.store(fresh, ordering: .relaxed)
        taken.add(1, ordering: .relaxed)
        return slots[Int(fresh)]
    }

    var hasPending: Bool { middle.load(ordering: .relaxed) & Self.dirty != 0 }
}

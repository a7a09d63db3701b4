import Synchronization

/// A bounded, lock-free ring for logs that must never block or grow (deadline misses, safety audit
/// records): one producer appends without waiting or allocating; a consumer drains. When the
/// consumer falls behind by more than `capacity`, the oldest elements are overwritten and counted in
/// `lost`.
///
/// **Contract: one producer at a time.** Appends must not overlap: they come from one thread (the
/// scheduler's dispatch thread for `missLog`), or from callers that already exclude each other (the
/// guard's `audit` is appended only while its owner holds the runtime's control lock). Debug builds
/// trap on two overlapping appends. Several unsynchronised producers: `MultiProducerRing`.
/// Drains may come from any thread; they are serialised among themselves by a lock that the
/// producer never touches, so a drain can wait for another drain, never an append for a drain.
/// Readers that must not take elements from one another (telemetry beside a run's summary) each
/// keep a `Cursor` and `read(from:)` instead: nothing is consumed, each counts its own losses.
///
/// How (overwrite-oldest without a lock): element number `p` (counting from 0) lives in slot
/// `p % capacity`, whose sequence word is `2p + 1` while the producer writes it and `2p + 2` once it
/// is complete — a seqlock per slot. The payload is kept as relaxed atomic words (`AtomicWords`),
/// hence `Element: BitwiseCopyable` (no references: an overwrite never releases anything, and a
/// copy taken mid-write can be thrown away). The consumer reads slot `p` only if its sequence is
/// `2p + 2` before (acquire) and after (behind an acquire fence) the copy; otherwise the producer
/// has lapped it and element `p` counts as lost. Why that suffices: the producer stores `2p' + 1`,
/// then a release fence, then the words of a newer element `p'`. If the consumer's copy read any of
/// those words, the release fence synchronises with the consumer's acquire fence, so its second
/// sequence load sees `2p' + 1` or later — never `2p + 2` again — and the torn copy is dropped.
/// If the first load sees `2p + 2` (a release store after element `p`'s words), the copy sees those
/// words or newer ones, which the second load catches as above. Order is preserved: the consumer
/// walks positions in order, skipping only lost ones, and `appended == drained + lost + pending`.
public final class OverwritingRing<Element: BitwiseCopyable & Sendable>: @unchecked Sendable {
    // @unchecked: the pointers are written only by the producer (slots, under the per-slot
    // sequence protocol above) and freed in deinit; every shared word is an `Atomic`.
    public let capacity: Int
    @usableFromInline let wordsPerSlot: Int
    /// One sequence word per slot (see above); 0: never written.
    @usableFromInline let sequences: UnsafeMutablePointer<Atomic<UInt64>>
    /// `capacity * wordsPerSlot` payload words.
    @usableFromInline let words: UnsafeMutablePointer<Atomic<UInt64>>
    /// Elements ever appended (the next position); written only by the producer.
    @usableFromInline let head = Atomic<UInt64>(0)
    /// The next position the consumer reads; written only by a drain.
    let tail = Atomic<UInt64>(0)
    /// Elements a drain found overwritten (or skipped because the producer was a lap ahead).
    let lostByDrain = Atomic<UInt64>(0)
    /// Serialises drains; never taken by `append`.
    let drainLock = Mutex<Void>(())
    /// Debug builds: set while an append runs, to trap a second, overlapping producer.
    @usableFromInline let appending = Atomic<Bool>(false)

    public init(capacity: Int) {
        precondition(capacity >= 1, "a ring needs room for one element")
        self.capacity = capacity
        wordsPerSlot = AtomicWords.count(for: Element.self)
        sequences = AtomicWords.allocate(capacity)
        words = AtomicWords.allocate(capacity * wordsPerSlot)
    }

    deinit {
        AtomicWords.deallocate(sequences, count: capacity)
        AtomicWords.deallocate(words, count: capacity * wordsPerSlot)
    }

    /// Real-time safe: no allocation, no lock, no wait, no loop (wait-free). One producer at a time.
    @inlinable public func append(_ element: Element) {
        assert(!appending.exchange(true, ordering: .acquiring),
               "OverwritingRing.append overlapped another append: the ring takes one producer at a time")
        let p = head.load(ordering: .relaxed)
        let slot = Int(p % UInt64(capacity))
        sequences[slot].store(2 &* p &+ 1, ordering: .relaxed)
        atomicMemoryFence(ordering: .releasing)
        AtomicWords.store(element, to: words + slot &* wordsPerSlot)
        sequences[slot].store(2 &* p &+ 2, ordering: .releasing)
        head.store(p &+ 1, ordering: .releasing)
        assert({ appending.store(false, ordering: .releasing); return true }())
    }

    /// Everything appended since the last drain and not overwritten meanwhile, oldest first.
    /// Allocates: not for a real-time thread.
    public func drain() -> [Element] {
        drainLock.withLock { _ in
            var cursor = Cursor(position: tail.load(ordering: .relaxed))
            let out = read(from: &cursor)
            if cursor.lost > 0 { lostByDrain.add(cursor.lost, ordering: .relaxed) }
            tail.store(cursor.position, ordering: .releasing)
            return out
        }
    }

    /// An independent reader's position in the ring (see `read(from:)`).
    public struct Cursor: Sendable, Equatable {
        /// The next element position this reader wants.
        public var position: UInt64
        /// Elements this reader never saw because the producer overwrote them first.
        public var lost: UInt64 = 0
        public init(position: UInt64 = 0) { self.position = position }
    }

    /// A cursor at the oldest element still in the ring: reading from it gives everything the ring
    /// holds now (as `recent()` does).
    public var oldestCursor: Cursor {
        let h = head.load(ordering: .acquiring)
        return Cursor(position: h > UInt64(capacity) ? h &- UInt64(capacity) : 0)
    }

    /// A cursor after the newest element: reading from it gives what is appended from now on.
    public var newestCursor: Cursor { Cursor(position: head.load(ordering: .acquiring)) }

    /// Everything appended since `cursor` and still in the ring, oldest first, without consuming
    /// it: `drain()` and other cursors see the same elements (each reader keeps its own cursor, so
    /// a telemetry reader never takes records from the run's summary). Elements overwritten before
    /// this read reached them are added to `cursor.lost`. The same per-slot sequence check as
    /// `drain()` (see the type's comment). Allocates: not for a real-time thread.
    public func read(from cursor: inout Cursor) -> [Element] {
        let h = head.load(ordering: .acquiring)
        var t = cursor.position
        let room = UInt64(capacity)
        if t > h { t = h }  // a cursor from the future (another ring's): nothing to read
        if h &- t > room {
            cursor.lost &+= h &- room &- t
            t = h &- room
        }
        var out: [Element] = []
        out.reserveCapacity(Int(h &- t))
        withUnsafeTemporaryAllocation(byteCount: 8 * wordsPerSlot, alignment: 8) { scratch in
            let scratch = scratch.baseAddress!
            while t < h {
                let slot = Int(t % room)
                let complete = 2 &* t &+ 2
                if sequences[slot].load(ordering: .acquiring) == complete {
                    AtomicWords.copy(words + slot &* wordsPerSlot, count: wordsPerSlot, to: scratch)
                    atomicMemoryFence(ordering: .acquiring)
                    if sequences[slot].load(ordering: .relaxed) == complete {
                        out.append(UnsafeRawPointer(scratch).loadUnaligned(as: Element.self))
                    } else {
                        cursor.lost &+= 1
                    }
                } else {
                    cursor.lost &+= 1
                }
                t &+= 1
            }
        }
        cursor.position = h
        return out
    }

    /// Everything the ring holds now, oldest first, without consuming it.
    public func recent() -> [Element] {
        var cursor = oldestCursor
        return read(from: &cursor)
    }

    /// Elements ever appended.
    public var appended: UInt64 { head.load(ordering: .relaxed) }

    /// Elements lost because nobody drained in time (overwritten before a drain reached them). A
    /// snapshot: exact when no drain runs; during a drain it may briefly undercount.
    public var lost: UInt64 {
        let counted = lostByDrain.load(ordering: .relaxed)
        let t = tail.load(ordering: .acquiring)
        let h = head.load(ordering: .acquiring)
        let pending = h &- t
        return counted &+ (pending > UInt64(capacity) ? pending &- UInt64(capacity) : 0)
    }

    /// Elements waiting for a drain (a snapshot, at most `capacity`).
    public var count: Int {
        let t = tail.load(ordering: .acquiring)
        let h = head.load(ordering: .acquiring)
        return Int(min(h &- t, UInt64(capacity)))
    }
}

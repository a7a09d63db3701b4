import Synchronization

/// A bounded, lock-free ring that **any number of threads** append to, without waiting or
/// allocating, and a consumer drains. When full, the **newest** element is dropped and counted in
/// `lost` (overwriting the oldest cannot be done for several producers without a lock). For logs
/// with several producers, e.g. the actuator writers' seal refusals; with one producer prefer
/// `OverwritingRing`, which keeps the newest elements instead.
///
/// How (D. Vyukov's bounded queue, one consumer): slot `i` carries a sequence word. A producer
/// reads the enqueue position `p`; if slot `p % capacity` has sequence `p` it is free, and the
/// producer claims `p` with a compare-exchange on the position (a failed exchange means another
/// producer claimed it: retry with the new position — lock-free, the loop only repeats when
/// another append made progress), writes the element and publishes it by storing `p + 1`
/// (release). A sequence below `p` means the slot still holds element `p - capacity`: full. The
/// consumer takes slot `p` when its sequence is `p + 1` (acquire) and frees it by storing
/// `p + capacity` (release). A slot is only ever accessed by the one thread that owns it under
/// that protocol, so the payload needs no atomics; `BitwiseCopyable` keeps a refusal from
/// releasing anything on the producer's thread.
///
/// A drain stops at a slot that is claimed but not yet written (its producer was preempted
/// mid-append): that element and the ones after it come with a later drain. Drains may come from
/// any thread; a lock that the producers never touch serialises them.
public final class MultiProducerRing<Element: BitwiseCopyable & Sendable>: @unchecked Sendable {
    // @unchecked: a slot's payload is accessed only by the thread that owns it under the sequence
    // protocol above; every shared word is an `Atomic`.
    public let capacity: Int
    @usableFromInline let sequences: UnsafeMutablePointer<Atomic<UInt64>>
    @usableFromInline let slots: UnsafeMutablePointer<Element>
    @usableFromInline let enqueuePosition = Atomic<UInt64>(0)
    let dequeuePosition = Atomic<UInt64>(0)
    @usableFromInline let appendCount = Atomic<UInt64>(0)
    @usableFromInline let lostCount = Atomic<UInt64>(0)
    let drainLock = Mutex<Void>(())

    public init(capacity: Int) {
        precondition(capacity >= 1, "a ring needs room for one element")
        self.capacity = capacity
        sequences = AtomicWords.allocate(capacity)
        for i in 0..<capacity { sequences[i].store(UInt64(i), ordering: .relaxed) }
        slots = .allocate(capacity: capacity)  // trivial elements: written before they are read
    }

    deinit {
        AtomicWords.deallocate(sequences, count: capacity)
        slots.deallocate()
    }

    /// Real-time safe: no allocation, no lock, no wait (lock-free). Any thread.
    @inlinable public func append(_ element: Element) {
        appendCount.add(1, ordering: .relaxed)
        let room = UInt64(capacity)
        var p = enqueuePosition.load(ordering: .relaxed)
        while true {
            let slot = Int(p % room)
            let sequence = sequences[slot].load(ordering: .acquiring)
            if sequence == p {
                let (claimed, seen) = enqueuePosition.compareExchange(expected: p, desired: p &+ 1, ordering: .relaxed)
                if claimed {
                    (slots + slot).initialize(to: element)
                    sequences[slot].store(p &+ 1, ordering: .releasing)
                    return
                }
                p = seen
            } else if sequence < p {
                lostCount.add(1, ordering: .relaxed)  // full: the slot still holds element p - capacity
                return
            } else {
                p = enqueuePosition.load(ordering: .relaxed)  // another producer took p
            }
        }
    }

    /// Everything published since the last drain, in the order the positions were claimed.
    /// Allocates: not for a real-time thread.
    public func drain() -> [Element] {
        drainLock.withLock { _ in
            let room = UInt64(capacity)
            var p = dequeuePosition.load(ordering: .relaxed)
            var out: [Element] = []
            out.reserveCapacity(count)
            while true {
                let slot = Int(p % room)
                guard sequences[slot].load(ordering: .acquiring) == p &+ 1 else { break }
                out.append(slots[slot])
                sequences[slot].store(p &+ room, ordering: .releasing)
                p &+= 1
            }
            dequeuePosition.store(p, ordering: .releasing)
            return out
        }
    }

    /// Appends attempted (kept or lost).
    public var appended: UInt64 { appendCount.load(ordering: .relaxed) }
    /// Appends dropped because the ring was full.
    public var lost: UInt64 { lostCount.load(ordering: .relaxed) }
    /// Elements claimed and not yet drained (a snapshot).
    public var count: Int {
        let d = dequeuePosition.load(ordering: .acquiring)
        let e = enqueuePosition.load(ordering: .acquiring)
        return e > d ? Int(min(e &- d, UInt64(capacity))) : 0
    }
}

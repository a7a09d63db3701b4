import Synchronization

/// A bounded, multi-producer single-consumer queue of events for one source.
///
/// Producers on any thread `push`; only the dispatch thread `pop`s. Storage is allocated once at
/// creation; pushes and pops never allocate. The lock is held for a handful of instructions.
final class IngressQueue: Sendable {
    struct Ring: ~Copyable {
        let slots: UnsafeMutablePointer<Event>
        let capacity: Int
        var head = 0
        var count = 0

        init(capacity: Int) {
            self.capacity = capacity
            slots = .allocate(capacity: capacity)
            slots.initialize(repeating: Event.empty, count: capacity)
        }

        deinit {
            slots.deinitialize(count: capacity)
            slots.deallocate()
        }

        @inline(__always) func index(_ offset: Int) -> Int {
            let i = head + offset
            return i >= capacity ? i - capacity : i
        }

        mutating func append(_ event: Event) {
            slots[index(count)] = event
            count += 1
        }

        mutating func removeFirst() -> Event {
            // Swap the empty event in: moves the payload out (released with it, not when the
            // slot is next overwritten) without a retain/release pair.
            var event = Event.empty
            swap(&event, &slots[head])
            head = index(1)
            count -= 1
            return event
        }
    }

    let spec: QueueSpec
    private let ring: Mutex<Ring>

    // Counters for snapshots; written under the lock, read from anywhere without it.
    let produced = Atomic<UInt64>(0)
    let dropped = Atomic<UInt64>(0)
    let rejected = Atomic<UInt64>(0)
    let depth = Atomic<Int>(0)
    let highWater = Atomic<Int>(0)

    init(spec: QueueSpec) {
        self.spec = spec
        ring = Mutex(Ring(capacity: spec.capacity))
    }

    /// Real-time safe (bounded lock hold, no allocation). `wasEmpty` tells the producer whether
    /// this post made the queue non-empty: only then must it ring the doorbell (otherwise the
    /// dispatcher already has the source staged or a ring pending), which keeps the doorbell's
    /// cache line out of the producer's way under load.
    func push(_ event: Event, wasEmpty: inout Bool) -> PostResult {
        produced.add(1, ordering: .relaxed)
        return ring.withLock { ring -> PostResult in
            var result = PostResult.accepted
            wasEmpty = ring.count == 0
            if spec.overflow == .keepLatestPerKey {
                for offset in 0..<ring.count {
                    let i = ring.index(offset)
                    if ring.slots[i].key == event.key {
                        ring.slots[i] = event
                        dropped.add(1, ordering: .relaxed)
                        return .coalesced
                    }
                }
            }
            if ring.count == ring.capacity {
                switch spec.overflow {
                case .reject:
                    rejected.add(1, ordering: .relaxed)
                    return .rejected
                case .dropOldest, .keepLatestPerKey:
                    _ = ring.removeFirst()
                    dropped.add(1, ordering: .relaxed)
                    result = .droppedOldest
                }
            }
            ring.append(event)
            depth.store(ring.count, ordering: .relaxed)
            if ring.count > highWater.load(ordering: .relaxed) {
                highWater.store(ring.count, ordering: .relaxed)
            }
            return result
        }
    }

    enum PopResult { case popped, empty, busy }

    /// Dispatch thread only: like `pop`, but never waits: if a producer holds the lock right now
    /// (for its few instructions), `busy` — the caller re-rings the source's doorbell bit and comes
    /// back, so the dispatch thread never sleeps on a producer's lock.
    func tryPop(into slot: inout Event) -> PopResult {
        if depth.load(ordering: .relaxed) == 0 { return .empty }  // racy fast path; the doorbell re-rings
        let outcome = ring.withLockIfAvailable { ring -> Bool in
            guard ring.count > 0 else { return false }
            swap(&slot, &ring.slots[ring.head])
            ring.head = ring.index(1)
            ring.count -= 1
            depth.store(ring.count, ordering: .relaxed)
            return true
        }
        switch outcome {
        case true?: return .popped
        case false?: return .empty
        case nil: return .busy
        }
    }

    /// Dispatch thread only: moves the oldest event into `slot` (a swap: no copy of the payload).
    func pop(into slot: inout Event) -> Bool {
        if depth.load(ordering: .relaxed) == 0 { return false }  // racy fast path; the doorbell re-rings
        return ring.withLock { ring -> Bool in
            guard ring.count > 0 else { return false }
            swap(&slot, &ring.slots[ring.head])
            ring.head = ring.index(1)
            ring.count -= 1
            depth.store(ring.count, ordering: .relaxed)
            return true
        }
    }
}

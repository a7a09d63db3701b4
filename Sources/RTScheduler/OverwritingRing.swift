import Synchronization

/// A bounded ring that one thread appends to without allocating and another drains. When full,
/// the oldest element is overwritten and counted — for logs that must never block or grow
/// (deadline misses, safety audit records).
public final class OverwritingRing<Element: Sendable>: Sendable {
    @usableFromInline struct Storage: ~Copyable {
        @usableFromInline let slots: UnsafeMutablePointer<Element>
        @usableFromInline let capacity: Int
        @usableFromInline var head = 0
        @usableFromInline var count = 0

        init(capacity: Int, filler: Element) {
            self.capacity = capacity
            slots = .allocate(capacity: capacity)
            slots.initialize(repeating: filler, count: capacity)
        }

        deinit {
            slots.deinitialize(count: capacity)
            slots.deallocate()
        }
    }

    @usableFromInline let storage: Mutex<Storage>
    /// Elements lost because nobody drained in time.
    public let overwritten = Atomic<UInt64>(0)
    /// Elements ever appended.
    public let appended = Atomic<UInt64>(0)

    /// `filler` initialises the preallocated slots; it is never returned.
    public init(capacity: Int, filler: Element) {
        precondition(capacity >= 1, "a ring needs room for one element")
        storage = Mutex(Storage(capacity: capacity, filler: filler))
    }

    /// Real-time safe: no allocation; a lock shared only with a drain.
    @inlinable public func append(_ element: Element) {
        appended.add(1, ordering: .relaxed)
        storage.withLock { ring in
            if ring.count == ring.capacity {
                ring.head = ring.head + 1 == ring.capacity ? 0 : ring.head + 1
                ring.count -= 1
                overwritten.add(1, ordering: .relaxed)
            }
            let tail = (ring.head + ring.count) % ring.capacity
            ring.slots[tail] = element
            ring.count += 1
        }
    }

    /// Everything appended since the last drain, oldest first. Allocates: not for a real-time thread.
    public func drain() -> [Element] {
        storage.withLock { ring in
            var out: [Element] = []
            out.reserveCapacity(ring.count)
            while ring.count > 0 {
                out.append(ring.slots[ring.head])
                ring.head = (ring.head + 1) % ring.capacity
                ring.count -= 1
            }
            return out
        }
    }

    public var count: Int { storage.withLock { $0.count } }
}

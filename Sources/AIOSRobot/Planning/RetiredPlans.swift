import Synchronization

/// Plans the dispatch thread is done with, handed back to the async lane to be released there: a
/// plan's last reference — and with it its arrays, which a `waypoints` policy keeps following
/// until it is given another route — is never dropped by the dispatch thread, whose free() could
/// wait for the allocator's lock. The executor (one producer, under the control lock) retires a
/// plan when it ends and when a motion policy stops following its route; the planner service
/// drains (`drain`) on the lane.
///
/// A plan retired during one run of the executor (a handler, a check) is released only once that
/// run has ended: until then the run may still hold references of its own, and the lane's release
/// must not leave the last one to it.
final class RetiredPlans: @unchecked Sendable {
    // @unchecked: the slots are written under the protocol below (a slot is the producer's while
    // empty, the drain's while full); every shared word is an `Atomic`; freed in deinit.
    static let capacity = 64
    /// One retained `ExecutablePlan` per slot (its opaque pointer), 0: empty.
    private let slots: UnsafeMutablePointer<Atomic<UInt>>
    /// The executor run that retired each slot's plan.
    private let stamps: UnsafeMutablePointer<Atomic<UInt64>>
    /// The next slot the producer fills (written by the producer only).
    private let head = Atomic<Int>(0)
    /// The next slot a drain empties; serialises drains (never taken by the producer).
    private let tail = Mutex<Int>(0)
    /// The executor run going on (or last begun), and the last one ended.
    private let run = Atomic<UInt64>(0)
    private let ended = Atomic<UInt64>(0)
    /// Plans the dispatch thread had to release itself because every slot was taken.
    let overflowed = Atomic<UInt64>(0)
    /// Plans released by drains.
    let released = Atomic<UInt64>(0)

    init() {
        slots = .allocate(capacity: Self.capacity)
        stamps = .allocate(capacity: Self.capacity)
        for i in 0..<Self.capacity {
            (slots + i).initialize(to: Atomic(0))
            (stamps + i).initialize(to: Atomic(0))
        }
    }

    deinit {
        for i in 0..<Self.capacity {
            let bits = slots[i].load(ordering: .acquiring)
            if let raw = UnsafeRawPointer(bitPattern: bits) { Unmanaged<ExecutablePlan>.fromOpaque(raw).release() }
        }
        slots.deinitialize(count: Self.capacity)
        slots.deallocate()
        stamps.deinitialize(count: Self.capacity)
        stamps.deallocate()
    }

    // MARK: The producer (the dispatch thread, under the control lock)

    /// Before a run of the executor.
    func beginRun() { run.store(run.load(ordering: .relaxed) &+ 1, ordering: .relaxed) }
    /// After it, once every reference it held itself is gone.
    func endRun() { ended.store(run.load(ordering: .relaxed), ordering: .releasing) }

    /// Takes one more reference to `plan`, released by a later drain. False when every slot is
    /// taken (the lane has not drained for 64 retirements): nothing is taken, counted.
    /// Real-time safe: no lock, no allocation.
    @discardableResult
    func retire(_ plan: ExecutablePlan) -> Bool {
        let h = head.load(ordering: .relaxed)
        let i = h % Self.capacity
        guard slots[i].load(ordering: .acquiring) == 0 else {
            overflowed.add(1, ordering: .relaxed)
            return false
        }
        stamps[i].store(run.load(ordering: .relaxed), ordering: .relaxed)
        slots[i].store(UInt(bitPattern: Unmanaged.passRetained(plan).toOpaque()), ordering: .releasing)
        head.store(h &+ 1, ordering: .relaxed)
        return true
    }

    // MARK: The consumer (the async lane)

    /// Releases the plans retired by runs that have ended, oldest first; returns how many.
    @discardableResult
    func drain() -> Int {
        tail.withLock { t in
            let done = ended.load(ordering: .acquiring)
            var count = 0
            while true {
                let i = t % Self.capacity
                let bits = slots[i].load(ordering: .acquiring)
                guard let raw = UnsafeRawPointer(bitPattern: bits), stamps[i].load(ordering: .relaxed) <= done else { break }
                slots[i].store(0, ordering: .releasing)
                Unmanaged<ExecutablePlan>.fromOpaque(raw).release()
                t &+= 1
                count += 1
            }
            released.add(UInt64(count), ordering: .relaxed)
            return count
        }
    }
}

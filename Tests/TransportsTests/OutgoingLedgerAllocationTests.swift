import CAllocCounter
import Foundation
import Synchronization
import Testing
@testable import Transports

/// Nothing under the ledger's lock allocates while the bound holds: the supervisor's emergency
/// publish and the network thread's sweep share that lock, and a malloc there can wait. Measured
/// with the malloc interposer on the calling thread, after one warm-up round (metadata, lazy
/// globals). The loops here run over indices: `for … in` over an array or a `Range<Int32>`
/// allocates once per element in a debug build (the generic iterator's coroutine frame).
@Suite("The MQTT ledger allocates nothing at its bound", .serialized)
struct OutgoingLedgerAllocationTests {
    static let bound = 1000

    /// One round at the bound: every message reserved and settled (QoS 0 and 1 alternating, a
    /// few confirmed before they settle, some on a command topic's slot), the QoS 1 ones
    /// confirmed, the QoS 0 ones swept, a refusal at the bound, and the emergency record beyond it.
    static func round(_ l: inout OutgoingLedger, base: Int32) -> Int {
        var refused = 0
        var i = 0
        while i < bound {
            _ = l.reserve(bytes: 20, maxMessages: bound, maxBytes: nil)
            i += 1
        }
        if l.reserve(bytes: 20, maxMessages: bound, maxBytes: nil) != nil { refused += 1 }
        i = 0
        while i < bound {
            let mid = base + Int32(i)
            if i % 100 == 1 { l.confirm(mid: mid) }  // on_publish before the id came back
            l.settle(mid: mid, qos: i % 2, bytes: 20, handedOver: true, slot: i % 10 == 3 ? 0 : -1)
            i += 1
        }
        l.record(mid: base + Int32(bound) + 3, qos: 1, bytes: 20)
        i = 1
        while i <= bound + 3 {
            if i % 2 == 1 && i % 100 != 1 { l.confirm(mid: base + Int32(i)) }
            i += 1
        }
        refused += l.discardQoS0(settledBefore: l.nextSettle) == bound / 2 ? 0 : 1000
        return refused
    }

    @Test func when_publishing_confirming_and_discarding_at_the_bound_expect_no_allocation() throws {
        try #require(alloc_counter_is_active() != 0, "the malloc interposer is not active in this binary")
        var l = OutgoingLedger(capacity: Self.bound, headroom: LedgerLock.slotCount)
        #expect(l.addSlot() == 0)  // allocates: at registration, before the connection starts
        #expect(Self.round(&l, base: 1) == 1)
        #expect(l.count == 0 && l.bytes == 0 && l.qos0Count == 0)
        var anomalies = 0
        let before = alloc_counter_thread_total()
        var r: Int32 = 1
        while r < 30 {
            anomalies += Self.round(&l, base: 1 + r * 2000) - 1
            anomalies += l.discardQoS0()  // a reconnect with nothing left
            r += 1
        }
        let allocations = alloc_counter_thread_total() - before
        #expect(allocations == 0, "\(allocations) allocations in 29 rounds of \(Self.bound) messages")
        #expect(anomalies == 0)
        #expect(l.count == 0 && l.bytes == 0)
    }

    /// The lock's two doors: `withLock` (which folds in what the slots hold) and the emergency
    /// record, through the lock when it is free and through a slot when another thread holds it.
    @Test func when_emergency_records_go_through_the_lock_or_a_slot_expect_no_allocation() throws {
        try #require(alloc_counter_is_active() != 0, "the malloc interposer is not active in this binary")
        let lock = LedgerLock(capacity: 100)
        func cycle(_ base: Int32) {
            _ = lock.recordWithoutWaiting(mid: base, qos: 1, bytes: 10)
            _ = lock.withLock { $0.reserve(bytes: 10, maxMessages: 100, maxBytes: nil) }
            _ = lock.withLock { $0.settle(mid: base + 1, qos: 0, bytes: 10, handedOver: true) }
            _ = lock.withLock { $0.confirm(mid: base) }
            _ = lock.withLock { $0.discardQoS0() }
        }
        cycle(1)
        let before = alloc_counter_thread_total()
        var i: Int32 = 1
        while i < 200 {
            cycle(1 + i * 2)
            i += 1
        }
        #expect(alloc_counter_thread_total() - before == 0)
        #expect(lock.withLock { $0.count } == 0)

        // Another thread holds the lock: the records go to slots, then fold in.
        let holder = LockHolder()
        holder.hold(lock)
        #expect(holder.waitUntilHeld())
        _ = lock.recordWithoutWaiting(mid: 60_000, qos: 1, bytes: 10)  // warms the slot path
        var recorded = 0
        let slotBefore = alloc_counter_thread_total()
        var m: Int32 = 60_001
        while m < 60_011 {
            if lock.recordWithoutWaiting(mid: m, qos: 1, bytes: 10) { recorded += 1 }
            m += 1
        }
        let slotAllocations = alloc_counter_thread_total() - slotBefore
        #expect(recorded == 10)
        holder.release()
        let foldBefore = alloc_counter_thread_total()
        let count = lock.withLock { $0.count }  // waits for the holder, then folds in eleven
        let foldAllocations = alloc_counter_thread_total() - foldBefore
        #expect(slotAllocations == 0 && foldAllocations == 0)
        #expect(count == 11 && lock.deferred.load(ordering: .relaxed) == 11)
    }
}

/// A thread that holds a ledger's lock (as the network thread does while it sweeps) until told,
/// or until `seconds` pass.
final class LockHolder: Sendable {
    private let held = Atomic<Bool>(false)
    private let released = Atomic<Bool>(false)
    private let done = Atomic<Bool>(false)

    func hold(_ lock: LedgerLock, seconds: Double = 30) {
        Thread { [self] in
            lock.withLock { _ in
                held.store(true, ordering: .releasing)
                let deadline = Date().addingTimeInterval(seconds)
                while !released.load(ordering: .acquiring) && Date() < deadline { usleep(1_000) }
            }
            done.store(true, ordering: .releasing)
        }.start()
    }

    func waitUntilHeld() -> Bool {
        let deadline = Date().addingTimeInterval(10)
        while !held.load(ordering: .acquiring) && Date() < deadline { usleep(1_000) }
        return held.load(ordering: .acquiring)
    }

    func release() { released.store(true, ordering: .releasing) }
    var isDone: Bool { done.load(ordering: .acquiring) }
}

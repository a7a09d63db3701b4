import CAllocCounter
import Foundation
import Synchronization
import Testing
@testable import RTScheduler

/// A record that checks itself: every field derives from `n`, so a copy mixing two appends shows.
/// 41 bytes: the last word is partial (exercises the tail copy).
struct Probe: BitwiseCopyable, Sendable, Equatable {
    var n: UInt64
    var a: UInt64
    var b: UInt64
    var c: UInt64
    var d: UInt64
    var tag: UInt8

    init(_ n: UInt64) {
        self.n = n
        a = n &* 0x9E37_79B9_7F4A_7C15
        b = ~n
        c = n &+ 0x5555_5555
        d = n ^ 0xA5A5_A5A5_A5A5_A5A5
        tag = UInt8(truncatingIfNeeded: n &* 31)
    }

    var isIntact: Bool { self == Probe(n) }
}

/// Eight equal numbers: a torn read shows as two different ones.
struct Eight: BitwiseCopyable, Sendable {
    var v: (Int64, Int64, Int64, Int64, Int64, Int64, Int64, Int64)
    init(_ x: Int64) { v = (x, x, x, x, x, x, x, x) }
    var isIntact: Bool { v.1 == v.0 && v.2 == v.0 && v.3 == v.0 && v.4 == v.0 && v.5 == v.0 && v.6 == v.0 && v.7 == v.0 }
}

/// Runs `body` on a new thread; `wait()` joins it.
final class Worker: @unchecked Sendable {
    private let done = DispatchSemaphore(value: 0)
    init(_ body: @escaping @Sendable () -> Void) {
        Thread.detachNewThread { [done] in
            body()
            done.signal()
        }
    }
    func wait() { done.wait() }
}

@Suite("Lock-free rings and the latest-value cell")
struct LockFreeTests {
    // MARK: OverwritingRing (one producer)

    @Test func when_more_than_capacity_is_appended_expect_the_newest_kept_and_the_rest_counted_lost() {
        let ring = OverwritingRing<Probe>(capacity: 4)
        for n in 0..<10 { ring.append(Probe(UInt64(n))) }
        #expect(ring.count == 4)
        #expect(ring.lost == 6)
        #expect(ring.drain().map(\.n) == [6, 7, 8, 9])
        #expect(ring.appended == 10)
        #expect(ring.lost == 6)
        #expect(ring.count == 0)
        ring.append(Probe(10))
        #expect(ring.drain().map(\.n) == [10])
        #expect(ring.drain().isEmpty)
    }

    @Test func when_a_drain_holds_its_lock_expect_an_append_to_complete() {
        let ring = OverwritingRing<Probe>(capacity: 2)
        // The same thread: if append took the drain's lock, this would trap or hang.
        ring.drainLock.withLock { _ in ring.append(Probe(1)) }
        #expect(ring.drain() == [Probe(1)])
    }

    @Test func when_one_producer_appends_a_million_while_a_consumer_drains_expect_no_torn_record_and_order_kept() {
        let total: UInt64 = 1_000_000
        for capacity in [64, 4_096] {
            let ring = OverwritingRing<Probe>(capacity: capacity)
            let finished = Atomic<Bool>(false)
            let producer = Worker {
                for n in 0..<total { ring.append(Probe(n)) }
                finished.store(true, ordering: .releasing)
            }
            var drained: UInt64 = 0
            var torn = 0
            var outOfOrder = 0
            var last: UInt64? = nil
            func take() {
                for record in ring.drain() {
                    if !record.isIntact { torn += 1; continue }
                    if let last, record.n <= last { outOfOrder += 1 }
                    last = record.n
                    drained += 1
                }
            }
            while !finished.load(ordering: .acquiring) { take() }
            producer.wait()
            take()
            #expect(torn == 0, "capacity \(capacity)")
            #expect(outOfOrder == 0, "capacity \(capacity)")
            #expect(ring.appended == total)
            #expect(ring.appended == drained + ring.lost, "capacity \(capacity): drained \(drained), lost \(ring.lost)")
            #expect(last == total - 1, "the newest record always survives")
        }
    }

    // MARK: MultiProducerRing

    @Test func when_a_multi_producer_ring_is_full_expect_the_newest_dropped_and_counted() {
        let ring = MultiProducerRing<Probe>(capacity: 4)
        for n in 0..<10 { ring.append(Probe(UInt64(n))) }
        #expect(ring.count == 4)
        #expect(ring.lost == 6)
        #expect(ring.drain().map(\.n) == [0, 1, 2, 3])
        ring.append(Probe(10))
        #expect(ring.drain().map(\.n) == [10])
        #expect(ring.appended == 11)
    }

    @Test func when_several_producers_append_while_a_consumer_drains_expect_each_producers_order_and_nothing_torn() {
        let producers = 3
        let perProducer: UInt64 = 200_000
        let ring = MultiProducerRing<Probe>(capacity: 256)
        let running = Atomic<Int>(producers)
        let workers = (0..<producers).map { p in
            Worker {
                for i in 0..<perProducer { ring.append(Probe(UInt64(p) << 32 | i)) }
                running.subtract(1, ordering: .releasing)
            }
        }
        var drained: UInt64 = 0
        var torn = 0
        var outOfOrder = 0
        var last = [UInt64?](repeating: nil, count: producers)
        func take() {
            for record in ring.drain() {
                if !record.isIntact { torn += 1; continue }
                let p = Int(record.n >> 32)
                let i = record.n & 0xFFFF_FFFF
                if let seen = last[p], i <= seen { outOfOrder += 1 }
                last[p] = i
                drained += 1
            }
        }
        while running.load(ordering: .acquiring) > 0 { take() }
        for worker in workers { worker.wait() }
        take()
        #expect(torn == 0)
        #expect(outOfOrder == 0)
        #expect(ring.appended == UInt64(producers) * perProducer)
        #expect(ring.appended == drained + ring.lost, "drained \(drained), lost \(ring.lost)")
        #expect(ring.count == 0)
    }

    // MARK: LatestValue

    @Test func when_a_writer_stores_at_full_speed_expect_readers_never_see_a_torn_or_older_value() {
        let cell = LatestValue(Eight(0))
        let stores: Int64 = 1_000_000
        let finished = Atomic<Bool>(false)
        let torn = Atomic<Int>(0)
        let backwards = Atomic<Int>(0)
        let reads = Atomic<Int>(0)
        let readers = (0..<2).map { _ in
            Worker {
                var previous: Int64 = 0
                var n = 0
                while !finished.load(ordering: .acquiring) {
                    let value = cell.load()
                    if !value.isIntact { torn.add(1, ordering: .relaxed) }
                    if value.v.0 < previous { backwards.add(1, ordering: .relaxed) }
                    previous = value.v.0
                    n += 1
                }
                reads.add(n, ordering: .relaxed)
            }
        }
        for x in 1...stores { cell.store(Eight(x)) }
        finished.store(true, ordering: .releasing)
        for reader in readers { reader.wait() }
        #expect(torn.load(ordering: .relaxed) == 0)
        #expect(backwards.load(ordering: .relaxed) == 0)
        #expect(reads.load(ordering: .relaxed) > 0)
        #expect(cell.load().v.0 == stores)
        #expect(cell.stores == UInt64(stores))
    }

    // MARK: Allocation

    @Test func when_appending_or_storing_expect_no_allocation() throws {
        try #require(alloc_counter_is_active() != 0, "the malloc interposer is not active in this binary")
        let ring = OverwritingRing<Probe>(capacity: 64)
        let misses = MissLog(capacity: 64)
        let shared = MultiProducerRing<Probe>(capacity: 64)
        let cell = LatestValue(Eight(0))
        let miss = MissRecord(task: TaskID(index: 1), kind: .finishLate, release: .zero, deadline: .zero, at: .zero, amount: 5)
        func cycle(_ n: Int) {
            ring.append(Probe(UInt64(n)))
            misses.append(miss)
            shared.append(Probe(UInt64(n)))  // full after 64: the dropping path is measured too
            cell.store(Eight(Int64(n)))
        }
        for n in 0..<1_000 { cycle(n) }  // warm up: metadata, lazy globals
        let before = alloc_counter_thread_total()
        for n in 0..<10_000 { cycle(n) }
        let allocations = alloc_counter_thread_total() - before
        #expect(allocations == 0, "\(allocations) allocations in 40 000 appends and stores")
        #expect(ring.lost > 0 && shared.lost > 0)
    }
}

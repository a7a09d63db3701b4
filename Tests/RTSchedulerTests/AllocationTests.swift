import CAllocCounter
import Testing
@testable import RTScheduler

@Suite("No allocation on the dispatch path in steady state")
struct AllocationTests {
    @Test func when_steady_state_expect_post_and_dispatch_allocate_nothing() throws {
        try #require(alloc_counter_is_active() != 0, "the malloc interposer is not active in this binary")
        let clock = VirtualClock()
        let scheduler = Scheduler(clock: clock)
        let sink = SinkBox()
        let sources = [OverflowPolicy.dropOldest, .reject, .keepLatestPerKey].enumerated().map { i, policy in
            scheduler.addSource("s\(i)", queue: QueueSpec(capacity: 8, overflow: policy),
                                subscription: Subscription(priority: .high, relativeDeadline: .microseconds(500))) { event in
                if case .values(let v) = event.payload { sink.total += v[0] }
            }
        }
        scheduler.addPeriodic("p", PeriodicSpec(period: .microseconds(100), priority: .normal)) { _ in sink.ticks += 1 }
        func cycle(_ n: Int) {
            var values = SampleValues(tag: 7, count: 6)
            values[0] = Double(n)
            // Indexed, not `for … in`: in debug builds the unspecialised array iterator boxes
            // each element, which would count the test's loop rather than the scheduler.
            for i in sources.indices { sources[i].post(.values(values), key: UInt32(n % 3)) }
            clock.advance(by: .microseconds(50))
            scheduler.runUntilIdle()
        }
        for n in 0..<1_000 { cycle(n) }  // warm up: first-touch allocations, lazy globals
        let before = alloc_counter_thread_total()
        for n in 0..<10_000 { cycle(n) }
        let allocations = alloc_counter_thread_total() - before
        #expect(allocations == 0, "\(allocations) allocations in 30 000 events and 5 000 periodic jobs")
        #expect(sink.ticks > 5_000)
    }
}

final class SinkBox: @unchecked Sendable {
    var total = 0.0
    var ticks = 0
}

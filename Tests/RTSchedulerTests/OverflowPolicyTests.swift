import Testing
@testable import RTScheduler

@Suite("Bounded ingress: every overflow policy, drops counted")
struct OverflowPolicyTests {
    private func makeSource(_ policy: OverflowPolicy, capacity: Int = 3) -> (Scheduler, SourceHandle, Recorder<Event>) {
        let scheduler = Scheduler(clock: VirtualClock())
        let seen = Recorder<Event>()
        let handle = scheduler.addSource("s", queue: QueueSpec(capacity: capacity, overflow: policy),
                                         subscription: Subscription(priority: .normal, relativeDeadline: .seconds(1))) { seen.append($0) }
        return (scheduler, handle, seen)
    }

    private func scalars(_ events: [Event]) -> [Double] {
        events.compactMap { if case .scalar(let v) = $0.payload { v } else { nil } }
    }

    @Test func when_full_with_drop_oldest_expect_newest_kept() throws {
        let (scheduler, source, seen) = makeSource(.dropOldest)
        let results = (0..<5).map { source.post(.scalar(Double($0))) }
        #expect(results == [.accepted, .accepted, .accepted, .droppedOldest, .droppedOldest])
        scheduler.runUntilIdle()
        #expect(scalars(seen.all) == [2, 3, 4])
        let queue = try #require(scheduler.snapshot().task(named: "s")?.queue)
        #expect(queue.produced == 5 && queue.dropped == 2 && queue.rejected == 0)
        #expect(queue.highWater == 3 && queue.depth == 0)
    }

    @Test func when_full_with_reject_expect_producer_told_and_queue_kept() throws {
        let (scheduler, source, seen) = makeSource(.reject)
        let results = (0..<5).map { source.post(.scalar(Double($0))) }
        #expect(results == [.accepted, .accepted, .accepted, .rejected, .rejected])
        scheduler.runUntilIdle()
        #expect(scalars(seen.all) == [0, 1, 2])
        let queue = try #require(scheduler.snapshot().task(named: "s")?.queue)
        #expect(queue.produced == 5 && queue.rejected == 2 && queue.dropped == 0)
        // Room again after dispatch.
        #expect(source.post(.scalar(9)) == .accepted)
    }

    @Test func when_same_key_with_keep_latest_expect_replaced_in_place() throws {
        let (scheduler, source, seen) = makeSource(.keepLatestPerKey)
        #expect(source.post(.scalar(1), key: 10) == .accepted)   // axis X
        #expect(source.post(.scalar(2), key: 11) == .accepted)   // axis Y
        #expect(source.post(.scalar(3), key: 10) == .coalesced)  // newer X replaces older X
        #expect(source.post(.scalar(4), key: 12) == .accepted)
        #expect(source.post(.scalar(5), key: 13) == .droppedOldest)  // a new key at a full queue
        scheduler.runUntilIdle()
        let events = seen.all
        #expect(events.map(\.key) == [11, 12, 13])
        #expect(scalars(events) == [2, 4, 5])
        let queue = try #require(scheduler.snapshot().task(named: "s")?.queue)
        #expect(queue.produced == 5 && queue.dropped == 2)
    }

    @Test func when_coalescing_expect_latest_value_and_its_release() {
        let (scheduler, source, seen) = makeSource(.keepLatestPerKey)
        source.post(.scalar(1), key: 1, release: instant(ms: 1))
        source.post(.scalar(2), key: 1, release: instant(ms: 2))
        source.post(.scalar(3), key: 1, release: instant(ms: 3))
        scheduler.runUntilIdle()
        #expect(scalars(seen.all) == [3])
        #expect(seen.all.first?.release == instant(ms: 3))
    }

    @Test func when_scheduler_stopped_expect_posts_refused() {
        let scheduler = Scheduler(clock: MonotonicClock())
        let source = scheduler.addSource("s", queue: QueueSpec(capacity: 2, overflow: .reject),
                                         subscription: Subscription(priority: .low, relativeDeadline: .seconds(1))) { _ in }
        scheduler.stop()
        #expect(source.post(.none) == .stopped)
    }
}

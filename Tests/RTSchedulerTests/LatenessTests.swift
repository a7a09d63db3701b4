import Testing
@testable import RTScheduler

@Suite("Deadline misses: overruns, late events, accounting")
struct LatenessTests {
    @Test func when_handler_overruns_expect_finish_late_miss() throws {
        let clock = VirtualClock()
        let scheduler = Scheduler(clock: clock)
        let source = scheduler.addSource("slow", queue: QueueSpec(capacity: 4, overflow: .reject),
                                         subscription: Subscription(priority: .high, relativeDeadline: .milliseconds(1))) { _ in
            clock.advance(by: .microseconds(1_500))  // the handler takes 1.5 ms against a 1 ms deadline
        }
        source.post(.none)
        scheduler.runUntilIdle()
        let task = try #require(scheduler.snapshot().task(named: "slow"))
        #expect(task.completions == 1)
        #expect(task.startLateMisses == 0)
        #expect(task.finishLateMisses == 1)
        #expect(task.worstLatenessNs == 500_000)
        #expect(task.responseTime.max >= 1_490_000 && task.responseTime.max <= 1_510_000)
        let misses = scheduler.missLog.drain()
        #expect(misses.map(\.kind) == [.finishLate])
        #expect(misses.first?.amount == 500_000)
    }

    @Test func when_handler_finishes_in_time_expect_no_miss() throws {
        let clock = VirtualClock()
        let scheduler = Scheduler(clock: clock)
        let source = scheduler.addSource("ok", queue: QueueSpec(capacity: 4, overflow: .reject),
                                         subscription: Subscription(priority: .high, relativeDeadline: .milliseconds(1))) { _ in
            clock.advance(by: .microseconds(1_000))  // exactly at the deadline counts as on time
        }
        source.post(.none)
        scheduler.runUntilIdle()
        let task = try #require(scheduler.snapshot().task(named: "ok"))
        #expect(task.completions == 1)
        #expect(task.misses == 0)
        #expect(task.worstLatenessNs == 0)
        #expect(scheduler.missLog.drain().isEmpty)
    }

    @Test(arguments: [LatePolicy.runAndCount, .dropAndCount])
    func when_event_is_past_deadline_at_its_turn_expect_policy(policy: LatePolicy) throws {
        let clock = VirtualClock()
        let scheduler = Scheduler(clock: clock)
        let ran = Recorder<Double>()
        let blocker = scheduler.addSource("blocker", queue: QueueSpec(capacity: 4, overflow: .reject),
                                          subscription: Subscription(priority: .critical, relativeDeadline: .seconds(1))) { _ in
            clock.advance(by: .milliseconds(5))
        }
        let late = scheduler.addSource("late", queue: QueueSpec(capacity: 4, overflow: .reject),
                                       subscription: Subscription(priority: .high, relativeDeadline: .milliseconds(2), whenLate: policy)) { event in
            if case .scalar(let v) = event.payload { ran.append(v) }
        }
        late.post(.scalar(1))
        blocker.post(.none)  // runs first (critical) and pushes "late" past its 2 ms deadline
        scheduler.runUntilIdle()
        let task = try #require(scheduler.snapshot().task(named: "late"))
        #expect(task.startLateMisses == 1)
        switch policy {
        case .runAndCount:
            #expect(ran.all == [1])
            #expect(task.completions == 1)
            #expect(task.finishLateMisses == 1)
            #expect(task.droppedLate == 0)
        case .dropAndCount:
            #expect(ran.all.isEmpty)
            #expect(task.completions == 0)
            #expect(task.droppedLate == 1)
        }
        #expect(task.misses == 1)
        #expect(task.releases == 1)
    }
}

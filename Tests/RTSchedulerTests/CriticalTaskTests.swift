import Testing
@testable import RTScheduler

@Suite("Critical tasks: K consecutive misses raise one deadline fault")
struct CriticalTaskTests {
    @Test func when_k_consecutive_misses_expect_exactly_one_fault() throws {
        let clock = VirtualClock()
        let scheduler = Scheduler(clock: clock)
        let faults = Recorder<DeadlineFault>()
        scheduler.onDeadlineFault = { faults.append($0) }
        let overrun = OverrunSwitch()
        // Period 1 ms, deadline 500 µs; the first 10 jobs take 700 µs (late), then 100 µs.
        scheduler.addPeriodic("control", PeriodicSpec(period: .milliseconds(1), relativeDeadline: .microseconds(500),
                                                      priority: .high, critical: CriticalPolicy(consecutiveMisses: 3))) { _ in
            clock.advance(by: overrun.next())
        }
        scheduler.advance(to: instant(us: 19_900))
        let got = faults.all
        #expect(got.count == 1)
        #expect(got.first?.taskName == "control")
        #expect(got.first?.consecutiveMisses == 3)
        #expect(got.first?.at == instant(us: 2_700))  // the third late job finished at 2.7 ms
        let task = try #require(scheduler.snapshot().task(named: "control"))
        #expect(task.deadlineFaults == 1)
        #expect(task.finishLateMisses == 10)
        #expect(scheduler.missLog.drain().filter { $0.kind == .deadlineFault }.count == 1)
    }

    @Test func when_streak_is_broken_expect_a_new_streak_to_fault_again() {
        let clock = VirtualClock()
        let scheduler = Scheduler(clock: clock)
        let faults = Recorder<DeadlineFault>()
        scheduler.onDeadlineFault = { faults.append($0) }
        let durations = DurationScript([700, 700, 100, 700, 700, 700, 700, 100, 700, 700, 700])
        scheduler.addPeriodic("control", PeriodicSpec(period: .milliseconds(1), relativeDeadline: .microseconds(500),
                                                      priority: .high, critical: CriticalPolicy(consecutiveMisses: 3))) { _ in
            clock.advance(by: .microseconds(durations.next()))
        }
        scheduler.advance(to: instant(us: 10_900))
        // Streaks: 2 (no fault), 4 (one fault), 3 (one fault).
        #expect(faults.count == 2)
    }

    @Test func when_not_critical_expect_no_fault_however_many_misses() {
        let clock = VirtualClock()
        let scheduler = Scheduler(clock: clock)
        let faults = Recorder<DeadlineFault>()
        scheduler.onDeadlineFault = { faults.append($0) }
        scheduler.addPeriodic("best-effort", PeriodicSpec(period: .milliseconds(1), relativeDeadline: .microseconds(100),
                                                          priority: .low)) { _ in clock.advance(by: .microseconds(200)) }
        scheduler.advance(to: instant(ms: 50))
        #expect(faults.count == 0)
        #expect(scheduler.snapshot().task(named: "best-effort")?.finishLateMisses == 51)
    }

    @Test func when_late_events_are_dropped_expect_drops_count_toward_the_streak() {
        let clock = VirtualClock()
        let scheduler = Scheduler(clock: clock)
        let faults = Recorder<DeadlineFault>()
        scheduler.onDeadlineFault = { faults.append($0) }
        let source = scheduler.addSource("imu", queue: QueueSpec(capacity: 8, overflow: .dropOldest),
                                         subscription: Subscription(priority: .high, relativeDeadline: .milliseconds(1),
                                                                    whenLate: .dropAndCount, critical: CriticalPolicy(consecutiveMisses: 2))) { _ in }
        source.post(.none, release: .zero)
        source.post(.none, release: .zero)
        clock.advance(to: instant(ms: 5))  // both are stale when dispatched
        scheduler.runUntilIdle()
        #expect(faults.count == 1)
        #expect(scheduler.snapshot().task(named: "imu")?.droppedLate == 2)
    }
}

final class OverrunSwitch: @unchecked Sendable {
    private var count = 0
    func next() -> Duration {
        count += 1
        return count <= 10 ? .microseconds(700) : .microseconds(100)
    }
}

final class DurationScript: @unchecked Sendable {
    private var values: [Int64]
    private var index = 0
    init(_ values: [Int64]) { self.values = values }
    func next() -> Int64 {
        defer { index += 1 }
        return index < values.count ? values[index] : 100
    }
}

import Synchronization
import Testing
@testable import RTScheduler

/// The scheduler's accounting window has one owner; progress readers (`snapshot()`) beside it
/// take nothing from its windows.
@Suite("Accounting window: one owner, every sample")
struct AccountingWindowTests {
    /// A source whose handler takes `work` of virtual time, with a 1 ms deadline.
    static func source(_ scheduler: Scheduler, _ clock: VirtualClock, work: @escaping @Sendable () -> Duration) -> SourceHandle {
        scheduler.addSource("work", queue: QueueSpec(capacity: 64, overflow: .reject),
                            subscription: Subscription(priority: .high, relativeDeadline: .milliseconds(1))) { _ in
            clock.advance(by: work())
        }
    }

    @Test func when_a_second_owner_is_asked_for_expect_an_error() throws {
        let scheduler = Scheduler(clock: VirtualClock())
        _ = try scheduler.makeAccountingWindow()
        #expect(throws: AccountingWindowError.alreadyOwned) { _ = try scheduler.makeAccountingWindow() }
    }

    @Test func when_snapshot_readers_run_between_windows_expect_the_owner_to_see_every_sample() throws {
        let clock = VirtualClock()
        let scheduler = Scheduler(clock: clock)
        let work = Atomic<Int64>(100_000)
        let source = Self.source(scheduler, clock) { .nanoseconds(work.load(ordering: .relaxed)) }
        let window = try scheduler.makeAccountingWindow()

        // Window 1: 10 jobs of 100 µs; two other readers take snapshots in between (each swaps the
        // histograms' active interval).
        for i in 0..<10 {
            source.post(.none)
            scheduler.runUntilIdle()
            if i % 3 == 0 { _ = scheduler.snapshot() }
            if i % 4 == 0 { _ = scheduler.statistics(for: TaskID(index: 0)).responseTime.histogram() }
        }
        let first = try #require(window.read().task(named: "work"))
        #expect(first.window.releases == 10 && first.window.completions == 10)
        #expect(first.window.responseTime.count == 10)
        #expect(first.window.startLatency.count == 10)
        #expect(first.window.responseTime.p99 >= 99_000 && first.window.responseTime.p99 <= 101_000)
        #expect(first.window.misses == 0)
        #expect(first.window.worstLatenessNs == -900_000)

        // Window 2: 5 jobs of 1.5 ms (each misses by 500 µs), snapshots in between again.
        work.store(1_500_000, ordering: .relaxed)
        for _ in 0..<5 {
            source.post(.none)
            scheduler.runUntilIdle()
            _ = scheduler.snapshot()
        }
        let report = window.read()
        let second = try #require(report.task(named: "work"))
        #expect(second.window.releases == 5 && second.window.responseTime.count == 5)
        #expect(second.window.misses == 5)
        #expect(second.window.responseTime.p50 >= 1_490_000 && second.window.responseTime.p50 <= 1_510_000)
        #expect(second.window.worstLatenessNs == 500_000)
        #expect(second.total.releases == 15 && second.total.responseTime.count == 15 && second.total.misses == 5)
        #expect(second.total.worstLatenessNs == 500_000)
        // The misses since the last read, from the miss log (finish-late, 500 µs each).
        #expect(report.misses.filter { $0.kind == .finishLate }.map(\.amount) == Array(repeating: 500_000, count: 5))
        #expect(report.missesLost == 0)

        // The snapshot still sees everything since start.
        let snapshot = try #require(scheduler.snapshot().task(named: "work"))
        #expect(snapshot.responseTime.count == 15 && snapshot.misses == 5)

        // An empty window: nothing released, no latency, no lateness.
        let third = try #require(window.read().task(named: "work"))
        #expect(third.window.releases == 0 && third.window.responseTime.count == 0 && third.window.worstLatenessNs == nil)
        #expect(third.total.responseTime.count == 15)
    }

    @Test func when_the_miss_log_is_drained_elsewhere_expect_the_owner_to_read_its_records_still() throws {
        let clock = VirtualClock()
        let scheduler = Scheduler(clock: clock)
        let source = Self.source(scheduler, clock) { .milliseconds(2) }
        let window = try scheduler.makeAccountingWindow()
        for _ in 0..<3 {
            source.post(.none)
            scheduler.runUntilIdle()
        }
        #expect(scheduler.missLog.drain().count == 3)
        #expect(window.read().misses.count == 3)
    }

    @Test func when_more_misses_than_the_log_holds_pile_up_expect_the_overwritten_ones_counted() throws {
        let clock = VirtualClock()
        let scheduler = Scheduler(clock: clock, missLogCapacity: 4)
        let source = Self.source(scheduler, clock) { .milliseconds(2) }
        let window = try scheduler.makeAccountingWindow()
        for _ in 0..<10 {
            source.post(.none)
            scheduler.runUntilIdle()
        }
        let report = window.read()
        #expect(report.misses.count == 4)
        #expect(report.missesLost == 6)
        #expect(UInt64(report.misses.count) + report.missesLost == report.task(named: "work")?.window.misses)
    }

    @Test func when_periodic_tasks_run_expect_their_period_and_deadline_and_skipped_releases_in_the_window() throws {
        let clock = VirtualClock()
        let scheduler = Scheduler(clock: clock)
        let slow = Atomic<Bool>(false)
        scheduler.addPeriodic("tick", PeriodicSpec(period: .milliseconds(10), relativeDeadline: .milliseconds(5), priority: .high)) { _ in
            if slow.load(ordering: .relaxed) { clock.advance(by: .milliseconds(25)) }
        }
        let window = try scheduler.makeAccountingWindow()
        scheduler.advance(by: .milliseconds(95))
        let first = try #require(window.read().task(named: "tick"))
        #expect(first.period == .milliseconds(10) && first.relativeDeadline == .milliseconds(5))
        #expect(first.window.releases == 10 && first.window.skippedReleases == 0)
        slow.store(true, ordering: .relaxed)
        scheduler.advance(by: .milliseconds(100))
        let second = try #require(window.read().task(named: "tick"))
        #expect(second.window.skippedReleases > 0)
        #expect(second.window.misses == second.window.releases)
        #expect(second.total.releases == first.window.releases + second.window.releases)
    }

    @Test func when_inputs_post_expect_arrivals_intervals_and_gaps_counted() {
        let clock = VirtualClock()
        let scheduler = Scheduler(clock: clock)
        let arrivals = ArrivalStatistics(gapThreshold: .milliseconds(50))
        let source = scheduler.addSource("in", queue: QueueSpec(capacity: 64, overflow: .dropOldest),
                                         subscription: Subscription(priority: .high, relativeDeadline: .milliseconds(10))) { _ in }
            .observed(by: arrivals)
        for t: Int64 in [0, 10, 20, 100, 110, 300] { source.post(.none, release: instant(ms: 1_000 + t)) }
        #expect(arrivals.count == 6)
        #expect(arrivals.gapCount == 2)  // 80 ms and 190 ms
        #expect(arrivals.takeWindowMaxInterval() == .milliseconds(190))
        #expect(arrivals.takeWindowMaxInterval() == .zero)
        #expect(arrivals.last == instant(ms: 1_300))
    }
}

@Suite("Overwriting ring: independent cursors")
struct RingCursorTests {
    @Test func when_two_readers_keep_cursors_expect_each_to_see_every_element_and_count_its_own_losses() {
        let ring = OverwritingRing<Int64>(capacity: 4)
        var a = ring.newestCursor, b = ring.newestCursor
        for i: Int64 in 1...3 { ring.append(i) }
        #expect(ring.read(from: &a) == [1, 2, 3])
        #expect(ring.drain() == [1, 2, 3])  // a drain takes nothing from the cursors
        for i: Int64 in 4...9 { ring.append(i) }
        #expect(ring.read(from: &a) == [6, 7, 8, 9] && a.lost == 2)
        #expect(ring.read(from: &b) == [6, 7, 8, 9] && b.lost == 5)
        #expect(ring.recent() == [6, 7, 8, 9])
        #expect(ring.read(from: &a).isEmpty)
    }
}

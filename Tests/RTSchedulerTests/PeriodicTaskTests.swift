import Testing
@testable import RTScheduler

@Suite("Periodic tasks: absolute releases, skip on overrun, no starvation")
struct PeriodicTaskTests {
    @Test func when_10000_periods_pass_expect_releases_on_exact_instants() {
        let clock = VirtualClock()
        let scheduler = Scheduler(clock: clock)
        let releases = Recorder<Instant>()
        let starts = Recorder<Instant>()
        // 1 kHz with a 250 µs phase; a period that is not a power of two in ns, to catch rounding.
        scheduler.addPeriodic("loop", PeriodicSpec(period: .nanoseconds(999_983), phase: .microseconds(250), priority: .high)) { event in
            releases.append(event.release)
            starts.append(clock.now())
        }
        let period: Int64 = 999_983
        scheduler.advance(to: Instant(nanoseconds: 250_000 + 9_999 * period))
        let got = releases.all
        #expect(got.count == 10_000)
        let expected = (0..<Int64(10_000)).map { Instant(nanoseconds: 250_000 + $0 * period) }
        #expect(got == expected)
        #expect(starts.all == expected)  // on virtual time each job starts exactly at its release
        let task = scheduler.snapshot().task(named: "loop")
        #expect(task?.skippedReleases == 0)
        #expect(task?.misses == 0)
    }

    @Test func when_task_overruns_expect_skipped_releases_and_no_burst() throws {
        let clock = VirtualClock()
        let scheduler = Scheduler(clock: clock)
        let starts = Recorder<Instant>()
        let releases = Recorder<Instant>()
        // Each job takes 2.5 periods.
        scheduler.addPeriodic("overrun", PeriodicSpec(period: .milliseconds(1), priority: .high)) { event in
            starts.append(clock.now())
            releases.append(event.release)
            clock.advance(by: .microseconds(2_500))
        }
        scheduler.advance(to: instant(ms: 100))
        let s = starts.all
        // Jobs of 2.5 ms in 100 ms: about 33 starts. Without them the loops below check nothing.
        try #require(s.count >= 30, "only \(s.count) jobs ran")
        // No catch-up burst: consecutive starts are always at least one job's length apart.
        for (a, b) in zip(s, s.dropFirst()) { #expect(b.nanoseconds(since: a) >= 2_500_000) }
        // Every release is on the 1 ms grid.
        for r in releases.all { #expect(r.nanoseconds % 1_000_000 == 0) }
        let task = try #require(scheduler.snapshot().task(named: "overrun"))
        #expect(UInt64(s.count) == task.completions)
        // Releases + skipped account for every grid instant that has passed, including those
        // passed during the last job (which ran beyond 100 ms).
        let passed = clock.now().nanoseconds / 1_000_000 + 1
        #expect(task.releases + task.skippedReleases == UInt64(passed))
        #expect(task.skippedReleases >= 55)
        #expect(task.finishLateMisses == task.completions)
        #expect(task.releases == task.completions || task.releases == task.completions + 1)
    }

    @Test func when_one_task_always_overruns_expect_others_in_its_class_still_run() throws {
        let clock = VirtualClock()
        let scheduler = Scheduler(clock: clock)
        let other = Recorder<Instant>()
        // A hog with a 1 ms period that always takes 1.5 ms, and a 10 ms task in the same class.
        scheduler.addPeriodic("hog", PeriodicSpec(period: .milliseconds(1), priority: .high)) { _ in
            clock.advance(by: .microseconds(1_500))
        }
        scheduler.addPeriodic("other", PeriodicSpec(period: .milliseconds(10), priority: .high)) { event in
            other.append(event.release)
            clock.advance(by: .microseconds(100))
        }
        scheduler.advance(to: instant(ms: 1_000))
        let snapshot = scheduler.snapshot()
        let otherTask = try #require(snapshot.task(named: "other"))
        // The rule: inside a class, EDF on absolute deadlines. A waiting job is overtaken only by
        // jobs with earlier deadlines; new releases of the hog carry later and later deadlines, so
        // After each hog job the hog's next release is its next grid instant, so "other" waits
        // at most one hog job (1.5 ms) and never misses.
        #expect(otherTask.skippedReleases == 0)
        #expect(otherTask.releases == 101 && otherTask.completions == 101)
        #expect(otherTask.misses == 0)
        #expect(otherTask.responseTime.max <= 1_700_000)
        let hog = try #require(snapshot.task(named: "hog"))
        #expect(hog.skippedReleases > 0)
    }

    @Test func when_phase_is_set_expect_first_release_at_origin_plus_phase() {
        let clock = VirtualClock(start: instant(ms: 3))
        let scheduler = Scheduler(clock: clock)
        let releases = Recorder<Instant>()
        scheduler.addPeriodic("p", PeriodicSpec(period: .milliseconds(10), phase: .milliseconds(4), priority: .normal)) { releases.append($0.release) }
        scheduler.advance(to: instant(ms: 30))
        #expect(releases.all == [instant(ms: 7), instant(ms: 17), instant(ms: 27)])
        #expect(scheduler.origin == instant(ms: 3))
    }

    @Test func when_dispatcher_is_busy_elsewhere_expect_only_latest_release_and_skips_counted() throws {
        let clock = VirtualClock()
        let scheduler = Scheduler(clock: clock)
        let releases = Recorder<Instant>()
        let blocker = scheduler.addSource("blocker", queue: QueueSpec(capacity: 1, overflow: .reject),
                                          subscription: Subscription(priority: .critical, relativeDeadline: .seconds(1))) { _ in
            clock.advance(by: .microseconds(3_400))
        }
        scheduler.addPeriodic("p", PeriodicSpec(period: .milliseconds(1), priority: .high)) { releases.append($0.release) }
        scheduler.advance(to: instant(us: 500))  // release 0 runs
        blocker.post(.none)
        scheduler.advance(to: instant(ms: 5))
        // 1, 2, 3 ms passed while the blocker ran (until 3.9 ms): only 3 ms is released (late), 1 and 2 are skipped.
        #expect(releases.all == [instant(ms: 0), instant(ms: 3), instant(ms: 4), instant(ms: 5)])
        let task = try #require(scheduler.snapshot().task(named: "p"))
        #expect(task.skippedReleases == 2)
        let skips = scheduler.missLog.drain().filter { $0.kind == .skippedRelease }
        #expect(skips.count == 1 && skips.first?.amount == 2)
    }
}

import CRealtime
import Dispatch
import Foundation
import Logging
import Synchronization
import Testing
@testable import RTScheduler

@Suite("Supervisor rules, checked with numbers")
struct SupervisorRuleTests {
    @Test func when_checked_expect_idle_running_stalled_or_reported() {
        let budget = Duration.milliseconds(10)
        #expect(Supervisor.check(now: instant(ms: 50), runningSince: nil, alreadyReported: false, budget: budget) == .idle)
        #expect(Supervisor.check(now: instant(ms: 105), runningSince: instant(ms: 100), alreadyReported: false, budget: budget)
                == .running(budgetEndsAt: instant(ms: 110)))
        // Exactly at the budget is still healthy; one nanosecond past it is a stall.
        #expect(Supervisor.check(now: instant(ms: 110), runningSince: instant(ms: 100), alreadyReported: false, budget: budget)
                == .running(budgetEndsAt: instant(ms: 110)))
        #expect(Supervisor.check(now: instant(ms: 110).advanced(byNanoseconds: 1), runningSince: instant(ms: 100),
                                 alreadyReported: false, budget: budget) == .stalled(runningFor: .ns(10_000_001)))
        #expect(Supervisor.check(now: instant(ms: 900), runningSince: instant(ms: 100), alreadyReported: true, budget: budget)
                == .reported)
    }

    @Test func when_no_budget_is_given_expect_three_periods_of_the_fastest_critical_task_or_the_fallback() {
        let options = SupervisorOptions()
        #expect(Supervisor.defaultBudget(criticalPeriods: [.milliseconds(20), .milliseconds(10)], options: options) == .milliseconds(30))
        // 3 × 1 ms would be within a hypervisor's hiccup: the floor applies.
        #expect(Supervisor.defaultBudget(criticalPeriods: [.milliseconds(1)], options: options) == .milliseconds(10))
        #expect(Supervisor.defaultBudget(criticalPeriods: [], options: options) == .milliseconds(100))
        #expect(Supervisor.defaultBudget(criticalPeriods: [.milliseconds(1)], options: SupervisorOptions(defaultBudget: .milliseconds(7)))
                == .milliseconds(7))
        #expect(Supervisor.checkInterval(budgets: [.milliseconds(30), .milliseconds(100)], options: options) == .microseconds(7_500))
        #expect(Supervisor.checkInterval(budgets: [.seconds(5)], options: options) == .milliseconds(20))
        #expect(Supervisor.checkInterval(budgets: [.milliseconds(2)], options: options) == .milliseconds(1))
    }

    @Test func when_tasks_are_configured_expect_own_budgets_kept_and_the_rest_defaulted() {
        let scheduler = Scheduler(clock: VirtualClock())
        scheduler.addPeriodic("control", PeriodicSpec(period: .milliseconds(20), priority: .high,
                                                      critical: CriticalPolicy(consecutiveMisses: 3))) { _ in }
        scheduler.addPeriodic("slow", PeriodicSpec(period: .milliseconds(5), priority: .low, budget: .milliseconds(500))) { _ in }
        _ = scheduler.addSource("in", queue: QueueSpec(capacity: 4, overflow: .dropOldest),
                                subscription: Subscription(priority: .normal, relativeDeadline: .milliseconds(5))) { _ in }
        // The non-critical 5 ms task does not set the default; the critical 20 ms one does.
        #expect(scheduler.handlerBudgets() == [.milliseconds(60), .milliseconds(500), .milliseconds(60)])
    }

    @Test func when_priorities_are_chosen_expect_one_above_the_dispatch_thread() {
        #expect(Supervisor.fifoPriority(dispatch: .fifo(priority: 80), options: SupervisorOptions()) == 81)
        #expect(Supervisor.fifoPriority(dispatch: .fifo(priority: 99), options: SupervisorOptions()) == 99)
        #expect(Supervisor.fifoPriority(dispatch: .other, options: SupervisorOptions()) == nil)
        #expect(Supervisor.fifoPriority(dispatch: .other, options: SupervisorOptions(fifoPriority: 10)) == 10)
        #expect(Supervisor.preempts(.fifo(priority: 81), .fifo(priority: 80)))
        #expect(!Supervisor.preempts(.fifo(priority: 99), .fifo(priority: 99)))
        #expect(!Supervisor.preempts(.other, .fifo(priority: 1)))
    }

    /// The word protocol between the dispatch thread and the supervisor, step by step.
    @Test func when_a_run_is_claimed_expect_the_return_to_see_it_exactly_once() throws {
        let progress = DispatchProgress()
        #expect(progress.observe() == nil)
        progress.begin(task: 3, at: instant(ms: 100))
        let seen = try #require(progress.observe())
        #expect(seen.task == 3 && seen.since == 100_000_000 && !seen.reported)
        #expect(progress.claim(since: seen.since))
        #expect(!progress.claim(since: seen.since))  // once
        #expect(progress.observe()?.reported == true)
        #expect(progress.end())
        #expect(progress.observe() == nil)

        // A run that returned before the claim is not reported, and its return saw no stall.
        progress.begin(task: 1, at: instant(ms: 200))
        let other = try #require(progress.observe())
        #expect(!progress.end())
        #expect(!progress.claim(since: other.since))
        // Nor is the next run confused with it.
        progress.begin(task: 2, at: instant(ms: 201))
        #expect(!progress.claim(since: other.since))
        #expect(!progress.end())
    }

    @Test func when_a_handler_overruns_on_virtual_time_expect_no_stall_reported() {
        let clock = VirtualClock()
        let scheduler = Scheduler(clock: clock)
        let stalls = Recorder<StallReport>()
        scheduler.onStall = { stalls.append($0) }
        scheduler.addPeriodic("slow", PeriodicSpec(period: .milliseconds(10), priority: .high, budget: .milliseconds(1))) { _ in
            clock.advance(by: .milliseconds(50))
        }
        scheduler.advance(to: instant(ms: 200))
        #expect(stalls.count == 0)
        #expect(scheduler.snapshot().stalls == 0)
        #expect(scheduler.supervisorReport == nil)
    }
}

@Suite("Supervisor of the dispatch thread, on real threads", .serialized)
struct SupervisorThreadTests {
    static let realtimeAllowed = getuid() == 0

    /// What the callbacks saw, in order, with their threads.
    final class Trace: Sendable {
        let entries = Recorder<(what: String, thread: String, at: Instant)>()
        func note(_ what: String) { entries.append((what, currentThreadName(), MonotonicClock().now())) }
        var order: [String] { entries.all.map(\.what) }
        func first(_ what: String) -> (what: String, thread: String, at: Instant)? { entries.all.first { $0.what == what } }
    }

    @Test func when_a_handler_blocks_for_two_seconds_expect_one_stall_and_recovery_before_the_next_job() throws {
        let scheduler = Scheduler(clock: MonotonicClock())
        let trace = Trace()
        let reports = Recorder<StallReport>()
        let recoveries = Recorder<StallRecovery>()
        let budget = Duration.milliseconds(50)
        scheduler.onStall = { report in
            reports.append(report)
            trace.note("stall")
        }
        scheduler.onStallRecovered = { recovery in
            recoveries.append(recovery)
            trace.note("recovered")
        }
        let blocker = DispatchSemaphore(value: 0)
        let stuck = scheduler.addSource("stuck", queue: QueueSpec(capacity: 2, overflow: .reject),
                                        subscription: Subscription(priority: .high, relativeDeadline: .milliseconds(5),
                                                                   budget: budget)) { _ in
            trace.note("stuck-start")
            _ = blocker.wait(timeout: .now() + 2)  // nobody signals it: blocked for 2 s
            trace.note("stuck-end")
        }
        let next = scheduler.addSource("next", queue: QueueSpec(capacity: 2, overflow: .reject),
                                       subscription: Subscription(priority: .critical, relativeDeadline: .milliseconds(5))) { _ in
            trace.note("next-job")
        }
        try scheduler.start()
        defer { scheduler.stop() }
        #expect(stuck.post(.none) == .accepted)
        try waitUntil(seconds: 1) { trace.first("stuck-start") != nil }
        #expect(scheduler.stalledTask == nil)  // running, within its budget
        #expect(next.post(.none) == .accepted)  // waits behind the stuck handler
        // Reported and not returned: what telemetry shows as `stalled` (the status is not updated).
        try waitUntil(seconds: 1) { trace.first("stall") != nil }
        #expect(scheduler.stalledTask == "stuck")
        try waitUntil(seconds: 5) { trace.first("next-job") != nil }
        #expect(scheduler.stalledTask == nil)

        #expect(trace.order == ["stuck-start", "stall", "stuck-end", "recovered", "next-job"])
        let start = try #require(trace.first("stuck-start")?.at)
        let stall = try #require(trace.first("stall"))
        // The trace's stamps carry its own overhead: the lower bound comes from the report's.
        #expect(stall.at - start < budget + .milliseconds(200))
        #expect(reports.all.first.map { $0.runningFor > budget } == true)
        #expect(stall.thread == "robotd-watch")
        #expect(trace.first("recovered")?.thread == "robotd-dispatch")
        #expect(reports.count == 1)
        #expect(reports.all.first?.taskName == "stuck")
        #expect(reports.all.first?.budget == budget)
        #expect(recoveries.all.first.map { $0.ranFor >= .milliseconds(1_900) } == true)
        let snapshot = scheduler.snapshot()
        #expect(snapshot.stalls == 1)
        #expect(snapshot.task(named: "stuck")?.stalls == 1)
        #expect(snapshot.task(named: "next")?.stalls == 0)
        #expect(scheduler.missLog.drain().filter { $0.kind == .stall }.count == 1)
    }

    /// The worst case for a supervisor: the handler spins at SCHED_FIFO on the dispatch thread's
    /// CPU, so nothing of lower or equal priority ever runs there again. Checked with the
    /// supervisor free to run anywhere and with it pinned to the same CPU (it must preempt).
    @Test(.enabled(if: realtimeAllowed, "SCHED_FIFO needs root or CAP_SYS_NICE: a spinning SCHED_OTHER handler is not the case under test"),
          arguments: [nil, 0] as [Int?])
    func when_a_handler_spins_at_fifo_on_a_pinned_cpu_expect_the_stall_still_reported(supervisorCPU: Int?) throws {
        let scheduler = Scheduler(clock: MonotonicClock())
        let trace = Trace()
        scheduler.onStall = { _ in trace.note("stall") }
        scheduler.onStallRecovered = { _ in trace.note("recovered") }
        let release = Atomic<Bool>(false)
        let spinner = scheduler.addSource("spin", queue: QueueSpec(capacity: 1, overflow: .reject),
                                          subscription: Subscription(priority: .high, relativeDeadline: .milliseconds(5),
                                                                     budget: .milliseconds(30))) { _ in
            trace.note("spin-start")
            // Bounded so that a broken supervisor fails the test instead of hanging CPU 0.
            let giveUp = MonotonicClock().now() + .seconds(3)
            while !release.load(ordering: .relaxed) && MonotonicClock().now() < giveUp {}
            trace.note("spin-end")
        }
        let report = try scheduler.start(realtime: RealtimeOptions(fifoPriority: 50, cpu: 0),
                                         supervisor: SupervisorOptions(cpu: supervisorCPU))
        defer { scheduler.stop() }
        try #require(report.policy == .fifo(priority: 50) && report.cpu == 0)
        let supervisor = try #require(scheduler.supervisorReport)
        #expect(supervisor.policy == .fifo(priority: 51))
        #expect(supervisor.canPreemptDispatch)
        #expect(spinner.post(.none) == .accepted)
        let stalled = Result { try waitUntil(seconds: 2) { trace.first("stall") != nil } }
        release.store(true, ordering: .relaxed)
        try waitUntil(seconds: 5) { trace.first("recovered") != nil }
        #expect((try? stalled.get()) != nil, "no stall reported while the handler spun")
        #expect(trace.order == ["spin-start", "stall", "spin-end", "recovered"])
        #expect(scheduler.snapshot().stalls == 1)
    }

    @Test func when_a_1khz_workload_is_healthy_for_two_seconds_expect_no_stall() throws {
        let scheduler = Scheduler(clock: MonotonicClock())
        let stalls = Recorder<StallReport>()
        scheduler.onStall = { stalls.append($0) }
        let ticks = Atomic<Int>(0)
        scheduler.addPeriodic("control", PeriodicSpec(period: .milliseconds(1), priority: .high,
                                                      critical: CriticalPolicy(consecutiveMisses: 50))) { _ in
            // A little work, as a control step would do.
            var x = 1.0
            for i in 0..<200 { x = x * 1.000_001 + Double(i) }
            if x.isNaN { ticks.add(1_000_000, ordering: .relaxed) }
            ticks.add(1, ordering: .relaxed)
        }
        let realtime = Self.realtimeAllowed ? RealtimeOptions(fifoPriority: 50) : RealtimeOptions()
        try scheduler.start(realtime: realtime)
        #expect(scheduler.supervisorReport?.budgets == [.milliseconds(10)])  // 3 × 1 ms, floored
        Thread.sleep(forTimeInterval: 2)
        scheduler.stop()
        #expect(ticks.load(ordering: .relaxed) >= 1_000)  // ~2000; generous for a shared VM
        #expect(stalls.count == 0)
        #expect(scheduler.snapshot().stalls == 0)
        #expect(scheduler.missLog.drain().filter { $0.kind == .stall }.isEmpty)
    }

    @Test(.enabled(if: realtimeAllowed, "SCHED_FIFO needs root or CAP_SYS_NICE"))
    func when_the_dispatch_thread_is_at_99_expect_one_warning_and_the_supervisor_off_its_cpu() throws {
        let warnings = WarningCollector()
        let scheduler = Scheduler(clock: MonotonicClock(), logger: Logger(label: "test") { _ in warnings })
        scheduler.addPeriodic("tick", PeriodicSpec(period: .milliseconds(10), priority: .high)) { _ in }
        try scheduler.start(realtime: RealtimeOptions(fifoPriority: 99, cpu: 0))
        let report = try #require(scheduler.supervisorReport)
        scheduler.stop()
        #expect(report.policy == .fifo(priority: 99))
        #expect(report.avoidsCPU == 0)
        #expect(report.canPreemptDispatch)
        #expect(warnings.messages.count == 1)
        #expect(warnings.messages.first?.contains("supervisor") == true)
    }

    @Test func when_disabled_expect_no_supervisor_thread() throws {
        let scheduler = Scheduler(clock: MonotonicClock())
        scheduler.addPeriodic("tick", PeriodicSpec(period: .milliseconds(10), priority: .high)) { _ in }
        try scheduler.start(supervisor: .disabled)
        scheduler.stop()
        #expect(scheduler.supervisorReport == nil)
    }
}

struct TimedOut: Error {}

/// Polls `condition` every millisecond for up to `seconds`.
func waitUntil(seconds: Double, _ condition: () -> Bool) throws {
    let deadline = MonotonicClock().now() + .milliseconds(Int64(seconds * 1000))
    while !condition() {
        if MonotonicClock().now() > deadline { throw TimedOut() }
        usleep(1000)
    }
}

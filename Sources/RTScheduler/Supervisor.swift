import CRealtime
import Glibc
import Logging
import Platform
import Synchronization

/// How the supervisor of the dispatch thread runs (see docs/scheduler.md, "Supervisor").
public struct SupervisorOptions: Sendable, Equatable {
    /// Off: no supervisor thread, no stall detection.
    public var enabled: Bool
    /// Budget of every task that has none of its own; nil: `defaultBudgetPeriods` periods of the
    /// fastest critical periodic task (at least `minimumDefaultBudget`), or `fallbackBudget`
    /// when there is no critical periodic task.
    public var defaultBudget: Duration?
    public var defaultBudgetPeriods: Int
    /// Floor of the period-derived default: below it, scheduling noise (a hypervisor holding a
    /// vCPU for 5–8 ms) would be reported as stalls.
    public var minimumDefaultBudget: Duration
    public var fallbackBudget: Duration
    /// Longest sleep between two checks; nil: a quarter of the smallest budget, within 1…20 ms.
    /// It also bounds how long `stop()` waits for the supervisor.
    public var checkInterval: Duration?
    /// SCHED_FIFO priority; nil: one above the dispatch thread's when that thread got SCHED_FIFO
    /// (99 at most), SCHED_OTHER when it did not (it then shares its CPU fairly anyway).
    public var fifoPriority: Int?
    /// Pin the supervisor to this CPU; nil: not pinned, and kept off the dispatch thread's CPU
    /// when it cannot be above the dispatch thread's priority.
    public var cpu: Int?

    public init(enabled: Bool = true, defaultBudget: Duration? = nil, defaultBudgetPeriods: Int = 3,
                minimumDefaultBudget: Duration = .milliseconds(10), fallbackBudget: Duration = .milliseconds(100),
                checkInterval: Duration? = nil, fifoPriority: Int? = nil, cpu: Int? = nil) {
        precondition(defaultBudget.map { $0 > .zero } ?? true, "a budget must be positive")
        precondition(defaultBudgetPeriods >= 1 && fallbackBudget > .zero, "a budget must be positive")
        precondition(checkInterval.map { $0 > .zero } ?? true, "a check interval must be positive")
        self.enabled = enabled
        self.defaultBudget = defaultBudget
        self.defaultBudgetPeriods = defaultBudgetPeriods
        self.minimumDefaultBudget = minimumDefaultBudget
        self.fallbackBudget = fallbackBudget
        self.checkInterval = checkInterval
        self.fifoPriority = fifoPriority
        self.cpu = cpu
    }

    public static let disabled = SupervisorOptions(enabled: false)
}

/// What the supervisor thread got, and the budgets it enforces.
public struct SupervisorReport: Sendable, Equatable {
    public var policy: RealtimeReport.Policy = .other
    /// The CPU it is pinned to, if any.
    public var cpu: Int?
    /// The dispatch thread's CPU it was kept off, if any.
    public var avoidsCPU: Int?
    /// True when it can preempt a dispatch thread that spins on its CPU (higher SCHED_FIFO
    /// priority, the dispatch thread on SCHED_OTHER, or not sharing a CPU with it).
    public var canPreemptDispatch = false
    /// Budget per task, indexed by `TaskID.index`.
    public var budgets: [Duration] = []
    public var checkInterval: Duration = .zero
    /// Each requested item that could not be applied, with the reason.
    public var notApplied: [String] = []
}

/// The supervisor's report of a handler that ran past its budget: on the supervisor thread,
/// once per stall, while the handler is still running.
public struct StallReport: Sendable, Equatable {
    public var task: TaskID
    public var taskName: String
    /// When the stuck handler started.
    public var startedAt: Instant
    public var detectedAt: Instant
    public var budget: Duration
    public var runningFor: Duration { detectedAt - startedAt }
}

/// A stalled handler has returned: on the dispatch thread, before anything else is dispatched.
public struct StallRecovery: Sendable, Equatable {
    public var task: TaskID
    public var taskName: String
    public var startedAt: Instant
    public var endedAt: Instant
    public var ranFor: Duration { endedAt - startedAt }
}

/// The supervisor's pure rules, kept apart from its thread so that tests check them with numbers.
public enum Supervisor {
    public enum Decision: Sendable, Equatable {
        /// No handler is running.
        case idle
        /// Within budget; look again by `budgetEndsAt` at the latest.
        case running(budgetEndsAt: Instant)
        /// Over budget and not reported yet: report it now.
        case stalled(runningFor: Duration)
        /// Over budget and already reported: wait for it to return.
        case reported
    }

    /// A handler exactly at its budget is still healthy; one nanosecond more is a stall.
    public static func check(now: Instant, runningSince: Instant?, alreadyReported: Bool, budget: Duration) -> Decision {
        guard let since = runningSince else { return .idle }
        if alreadyReported { return .reported }
        let ends = since + budget
        return now > ends ? .stalled(runningFor: now - since) : .running(budgetEndsAt: ends)
    }

    /// The budget of tasks without their own: see `SupervisorOptions.defaultBudget`.
    public static func defaultBudget(criticalPeriods: [Duration], options: SupervisorOptions) -> Duration {
        if let fixed = options.defaultBudget { return fixed }
        guard let fastest = criticalPeriods.min() else { return options.fallbackBudget }
        return max(fastest * options.defaultBudgetPeriods, options.minimumDefaultBudget)
    }

    public static func checkInterval(budgets: [Duration], options: SupervisorOptions) -> Duration {
        if let fixed = options.checkInterval { return fixed }
        let smallest = budgets.min() ?? options.fallbackBudget
        return min(max(smallest / 4, .milliseconds(1)), .milliseconds(20))
    }

    /// The supervisor's SCHED_FIFO priority (nil: SCHED_OTHER) beside the dispatch thread's policy.
    public static func fifoPriority(dispatch: RealtimeReport.Policy, options: SupervisorOptions) -> Int? {
        if let explicit = options.fifoPriority { return explicit }
        guard case .fifo(let p) = dispatch else { return nil }
        return min(p + 1, 99)
    }

    /// Whether a supervisor with `supervisor` policy preempts a dispatch thread with `dispatch` policy
    /// when both want the same CPU.
    public static func preempts(_ supervisor: RealtimeReport.Policy, _ dispatch: RealtimeReport.Policy) -> Bool {
        switch (supervisor, dispatch) {
        case (.fifo(let s), .fifo(let d)): s > d
        case (.fifo, .other): true
        // CFS gives a timesharing supervisor its share beside a timesharing dispatch thread.
        case (.other, .other): true
        case (.other, .fifo): false
        }
    }
}

/// What the dispatch thread publishes for the supervisor: which task's handler runs, since when.
/// One word per fact, stores only on the dispatch path (plus one exchange when a handler returns),
/// no allocation.
final class DispatchProgress: Sendable {
    /// The running task's index; meaningful while `since` is non-zero.
    private let task = Atomic<Int>(-1)
    /// Start (ns) of the running handler; 0 when idle. The supervisor sets the sign bit when it
    /// reports the run as stalled, so the dispatch thread learns it from the same word it clears.
    private let since = Atomic<Int64>(0)
    /// Stalls reported, all tasks.
    let stalls = Atomic<UInt64>(0)

    @inline(__always) func begin(task t: Int, at start: Instant) {
        task.store(t, ordering: .releasing)
        // 0 means idle, so a start at the clock's epoch is published as 1 ns.
        since.store(max(start.nanoseconds, 1), ordering: .releasing)
    }

    /// Marks the dispatch thread idle; true when the supervisor reported this run as stalled.
    /// An exchange, not a store: a report and the return cannot slip past each other.
    @inline(__always) func end() -> Bool {
        since.exchange(0, ordering: .acquiringAndReleasing) < 0
    }

    /// The running handler as one consistent (task, since) pair; nil when idle or when the job
    /// changed while it was read (the next check sees the new one).
    func observe() -> (task: Int, since: Int64, reported: Bool)? {
        let first = since.load(ordering: .acquiring)
        if first == 0 { return nil }
        let t = task.load(ordering: .acquiring)
        guard since.load(ordering: .acquiring) == first else { return nil }
        return (t, first & Int64.max, first < 0)
    }

    /// Claims the run that started at `start` as stalled; false if it has returned meanwhile.
    func claim(since start: Int64) -> Bool {
        since.compareExchange(expected: start, desired: start | Int64.min, ordering: .acquiringAndReleasing).exchanged
    }
}

/// The supervisor thread: wakes at absolute CLOCK_MONOTONIC instants, reads `DispatchProgress`,
/// reports a run past its budget once.
final class SupervisorThread: Sendable {
    private let stopFlag: StopFlag
    private let thread: Mutex<RealtimeThread?>
    /// What the thread got, and the budgets it enforces.
    let report: SupervisorReport

    struct Watch: Sendable {
        let clock: any SchedulerClock
        let progress: DispatchProgress
        let budgets: [Int64]
        let names: [String]
        let stats: [TaskStatistics]
        let interval: Int64
        let onStall: (@Sendable (StallReport) -> Void)?
    }

    /// Starts the thread and returns once its real-time setup is done.
    init(watch: Watch, options: SupervisorOptions, dispatch: RealtimeReport, budgets: [Duration],
         logger: Logger) throws {
        let applied = Mutex<SupervisorReport?>(nil)
        let stop = StopFlag()
        let handle = try RealtimeThread(name: "robotd-watch", stackBytes: 256 * 1024) {
            var report = Self.setUp(options: options, dispatch: dispatch, logger: logger)
            report.budgets = budgets
            report.checkInterval = .nanoseconds(watch.interval)
            applied.withLock { $0 = report }
            Self.loop(watch, stop: stop)
        }
        while applied.withLock({ $0 }) == nil { sched_yield() }
        stopFlag = stop
        thread = Mutex(handle)
        report = applied.withLock { $0 } ?? SupervisorReport()
    }

    /// Stops and joins the thread (within one check interval). Idempotent.
    func stop() {
        stopFlag.set()
        let handle = thread.withLock { t -> RealtimeThread? in
            let current = t
            t = nil
            return current
        }
        handle?.join()
    }

    private static func setUp(options: SupervisorOptions, dispatch: RealtimeReport, logger: Logger) -> SupervisorReport {
        var report = SupervisorReport()
        if let cpu = options.cpu {
            let rc = rt_pin_current_thread(Int32(cpu))
            if rc == 0 { report.cpu = cpu } else { report.notApplied.append("CPU affinity \(cpu): \(RealtimeSetup.errnoText(rc))") }
        }
        if let priority = Supervisor.fifoPriority(dispatch: dispatch.policy, options: options) {
            let rc = rt_set_fifo(Int32(priority))
            if rc == 0 {
                report.policy = .fifo(priority: priority)
            } else {
                report.notApplied.append("SCHED_FIFO priority \(priority): \(RealtimeSetup.errnoText(rc))")
            }
        }
        let above = Supervisor.preempts(report.policy, dispatch.policy)
        let sharesCPU = dispatch.cpu != nil && (report.cpu == nil || report.cpu == dispatch.cpu)
        if !above, sharesCPU, let dispatchCPU = dispatch.cpu {
            if report.cpu == nil {
                // Not above it: it must not wait behind a spinning dispatch thread on that CPU.
                let rc = rt_avoid_cpu(Int32(dispatchCPU))
                if rc == 0 { report.avoidsCPU = dispatchCPU } else {
                    report.notApplied.append("staying off the dispatch CPU \(dispatchCPU): \(RealtimeSetup.errnoText(rc))")
                }
            } else {
                report.notApplied.append("a priority above the dispatch thread's on its CPU \(dispatchCPU)")
            }
        }
        report.canPreemptDispatch = above || report.avoidsCPU != nil || (dispatch.cpu != nil && report.cpu != nil && report.cpu != dispatch.cpu)
        if case .fifo(let d) = dispatch.policy, options.fifoPriority == nil, d >= 99 {
            report.notApplied.append("a priority above the dispatch thread's 99")
        }
        rt_prefault_stack(64 * 1024)
        if !report.notApplied.isEmpty {
            let policy = report.policy == .other ? "SCHED_OTHER" : "SCHED_FIFO"
            let reach = report.canPreemptDispatch ? "" : "; a handler spinning at SCHED_FIFO can hide a stall from it"
            logger.warning("supervisor setup incomplete; it runs with \(policy) and without: \(report.notApplied.joined(separator: "; "))\(reach)")
        }
        return report
    }

    private static func loop(_ watch: Watch, stop: StopFlag) {
        while !stop.isSet {
            let now = watch.clock.now()
            var next = now.advanced(byNanoseconds: watch.interval)
            if let seen = watch.progress.observe(), seen.task >= 0, seen.task < watch.budgets.count {
                let start = Instant(nanoseconds: seen.since)
                let budget = Duration.nanoseconds(watch.budgets[seen.task])
                switch Supervisor.check(now: now, runningSince: start, alreadyReported: seen.reported, budget: budget) {
                case .idle, .reported:
                    break
                case .running(let ends):
                    // Wake just past the budget rather than up to a whole interval later.
                    next = min(next, ends.advanced(byNanoseconds: 1))
                case .stalled:
                    if watch.progress.claim(since: seen.since) {
                        watch.stats[seen.task].bump(watch.stats[seen.task].stalls)
                        watch.progress.stalls.add(1, ordering: .relaxed)
                        watch.onStall?(StallReport(task: TaskID(index: seen.task), taskName: watch.names[seen.task],
                                                   startedAt: start, detectedAt: now, budget: budget))
                    }
                }
            }
            rt_sleep_until(next.nanoseconds)
        }
    }
}

import Platform
import Glibc
import Logging
import Synchronization

public typealias EventHandler = @Sendable (Event) -> Void

/// Deadline-driven dispatch of events and periodic tasks on one thread.
///
/// Order: strict priority between classes; earliest absolute deadline first inside a class; the
/// global sequence number breaks ties. Each source and each periodic task has at most one job in
/// the ready queue, so dispatch never allocates and an overrunning task cannot flood it.
///
/// Lifecycle: configure (`addSource`, `addPeriodic`, `onDeadlineFault`) on one thread, then
/// either drive it by hand on a `VirtualClock` (`runUntilIdle`, `advance(to:)`) or `start()` its
/// real-time thread on a `MonotonicClock`. After the first dispatch the configuration is frozen.
/// Producers post through `SourceHandle`s from any thread; `snapshot()` and `missLog` are
/// readable from any thread.
public final class Scheduler: @unchecked Sendable {
    // @unchecked: configuration state is written only before the first dispatch (checked with
    // `frozen`); dispatch state is touched only by the single dispatching thread; everything read
    // across threads is atomic or lock-protected.

    public let clock: any SchedulerClock
    public let missLog: MissLog
    let logger: Logger
    let hub: IngressHub
    public let maxRunnables: Int

    /// Called once on the dispatch thread after its real-time setup, before the first dispatch
    /// (thread mode): e.g. a test arms a per-thread probe there.
    public var onDispatchThreadStart: (@Sendable () -> Void)? {
        get { core.pointee.threadStartHandler }
        set { precondition(!isFrozen, "configure the scheduler before it dispatches"); core.pointee.threadStartHandler = newValue }
    }

    /// Called once on the dispatch thread after its last dispatch, before it exits (thread mode).
    public var onDispatchThreadStop: (@Sendable () -> Void)? {
        get { core.pointee.threadStopHandler }
        set { precondition(!isFrozen, "configure the scheduler before it dispatches"); core.pointee.threadStopHandler = newValue }
    }

    /// The address of the futex word the dispatch thread sleeps on (its only legitimate wait), for
    /// probes that count every other blocking call on that thread.
    public var doorbellFutexWord: UnsafeRawPointer { hub.doorbell.futexWord }

    /// Called on the dispatch thread when a critical task reaches its consecutive-miss limit.
    public var onDeadlineFault: (@Sendable (DeadlineFault) -> Void)? {
        get { core.pointee.faultHandler }
        set { precondition(!isFrozen, "configure the scheduler before it dispatches"); core.pointee.faultHandler = newValue }
    }

    /// Called on the supervisor thread, once per stall, while a handler runs past its budget (the
    /// dispatch thread is stuck in it): put the actuators in their safe state here, lock-free.
    /// Set before `start`.
    public var onStall: (@Sendable (StallReport) -> Void)? {
        get { core.pointee.stallHandler }
        set { precondition(!isFrozen, "configure the scheduler before it dispatches"); core.pointee.stallHandler = newValue }
    }

    /// Called on the dispatch thread when a handler reported as stalled returns, before anything
    /// else is dispatched. Set before `start`.
    public var onStallRecovered: (@Sendable (StallRecovery) -> Void)? {
        get { core.pointee.stallRecoveredHandler }
        set { precondition(!isFrozen, "configure the scheduler before it dispatches"); core.pointee.stallRecoveredHandler = newValue }
    }

    struct TaskDescriptor {
        let name: String
        let kind: TaskSnapshot.Kind
        let priority: PriorityClass
        let whenLate: LatePolicy
        let critical: CriticalPolicy?
        let budget: Duration?
        let period: Duration?
        /// The relative deadline of its jobs (release → deadline).
        let relativeDeadline: Duration
        let stats: TaskStatistics
        let queue: IngressQueue?
        let handler: EventHandler
    }

    /// Everything the dispatcher reads and writes, behind one pointer: accesses through an unsafe
    /// pointer carry no dynamic exclusivity checks, which cost more than the dispatch work itself
    /// (measured with perf: ~10 % of a dispatch in swift_beginAccess/endAccess). Written by the
    /// configuring thread before the first dispatch, then only by the dispatching thread.
    /// `descriptors` is never mutated after the freeze, so any thread may read it.
    struct DispatchState: ~Copyable {
        var faultHandler: (@Sendable (DeadlineFault) -> Void)?
        var threadStartHandler: (@Sendable () -> Void)?
        var threadStopHandler: (@Sendable () -> Void)?
        var stallHandler: (@Sendable (StallReport) -> Void)?
        var stallRecoveredHandler: (@Sendable (StallRecovery) -> Void)?
        var descriptors: [TaskDescriptor] = []
        var sourceTasks: [Int] = []        // source index → task index
        var periodicTasks: [Int] = []      // periodic index → task index
        var periodicSpecs: [(phase: Int64, period: Int64, deadline: Int64)] = []
        var origin: Instant = .zero
        var ready: ReadyQueue
        var staged: [Event] = []
        var isStaged: [Bool] = []
        var busyPasses: [Int] = []        // source index → consecutive passes its queue was busy
        var consecutiveMisses: [Int] = []
        var nextGridIndex: [Int64] = []
        var periodicPending: [Bool] = []
        var periodicEvent: [Event] = []
        var nextTimer: Instant = .distantFuture

        init(capacity: Int) { ready = ReadyQueue(capacity: capacity) }
    }

    private let core: UnsafeMutablePointer<DispatchState>
    private let frozen = Atomic<Bool>(false)
    /// Set once an accounting window has been handed out.
    private let windowOwned = Atomic<Bool>(false)
    var isFrozen: Bool { frozen.load(ordering: .acquiring) }
    /// Periodic releases are at origin + phase + k·period; origin is the clock at the first dispatch.
    public var origin: Instant { core.pointee.origin }
    /// The origin once dispatch has begun, nil before: safe to read from any thread (the freeze's
    /// release store publishes it).
    public var dispatchOrigin: Instant? { isFrozen ? core.pointee.origin : nil }

    // Thread mode.
    let stopRequested = Atomic<Bool>(false)
    private let runningThread = Mutex<RealtimeThread?>(nil)
    private let lastReport = Mutex<RealtimeReport?>(nil)
    /// What the dispatch thread publishes for the supervisor (also written on a virtual clock:
    /// two stores, and it keeps one dispatch path).
    let progress = DispatchProgress()
    private let supervisor = Mutex<SupervisorThread?>(nil)
    private let lastSupervisorReport = Mutex<SupervisorReport?>(nil)

    public init(clock: any SchedulerClock, logger: Logger = Logger(label: "robotd.scheduler"),
                maxRunnables: Int = 256, missLogCapacity: Int = 1024) {
        self.clock = clock
        self.logger = logger
        self.maxRunnables = maxRunnables
        self.missLog = MissLog(capacity: missLogCapacity)
        self.hub = IngressHub(doorbell: Doorbell(bits: maxRunnables), clock: clock)
        core = .allocate(capacity: 1)
        core.initialize(to: DispatchState(capacity: maxRunnables))
    }

    // MARK: configuration

    /// Adds a source with its bounded ingress queue and its one subscription.
    public func addSource(_ name: String, queue: QueueSpec, subscription: Subscription,
                          handler: @escaping EventHandler) -> SourceHandle {
        precondition(!isFrozen, "configure the scheduler before it dispatches")
        precondition(core.pointee.descriptors.count < maxRunnables, "more runnables than maxRunnables")
        let ingress = IngressQueue(spec: queue)
        let sourceIndex = core.pointee.sourceTasks.count
        core.pointee.sourceTasks.append(core.pointee.descriptors.count)
        core.pointee.descriptors.append(TaskDescriptor(
            name: name, kind: .event, priority: subscription.priority, whenLate: subscription.whenLate,
            critical: subscription.critical, budget: subscription.budget, period: nil,
            relativeDeadline: subscription.relativeDeadline, stats: TaskStatistics(),
            queue: ingress, handler: handler))
        core.pointee.consecutiveMisses.append(0)
        core.pointee.staged.append(Event.empty)
        core.pointee.isStaged.append(false)
        core.pointee.busyPasses.append(0)
        return SourceHandle(id: SourceID(index: sourceIndex), name: name, priority: subscription.priority,
                            relativeDeadline: subscription.relativeDeadline,
                            deadlineNanoseconds: subscription.relativeDeadline.nanoseconds,
                            queue: ingress, hub: hub)
    }

    /// Adds a periodic task. Its handler receives an event whose `release` is the grid instant.
    @discardableResult
    public func addPeriodic(_ name: String, _ spec: PeriodicSpec, handler: @escaping EventHandler) -> TaskID {
        precondition(!isFrozen, "configure the scheduler before it dispatches")
        precondition(core.pointee.descriptors.count < maxRunnables, "more runnables than maxRunnables")
        let id = TaskID(index: core.pointee.descriptors.count)
        core.pointee.periodicTasks.append(core.pointee.descriptors.count)
        core.pointee.descriptors.append(TaskDescriptor(
            name: name, kind: .periodic, priority: spec.priority, whenLate: spec.whenLate,
            critical: spec.critical, budget: spec.budget, period: spec.period,
            relativeDeadline: spec.relativeDeadline, stats: TaskStatistics(),
            queue: nil, handler: handler))
        core.pointee.periodicSpecs.append((spec.phase.nanoseconds, spec.period.nanoseconds, spec.relativeDeadline.nanoseconds))
        core.pointee.consecutiveMisses.append(0)
        core.pointee.nextGridIndex.append(0)
        core.pointee.periodicPending.append(false)
        core.pointee.periodicEvent.append(Event.empty)
        return id
    }

    public func taskID(named name: String) -> TaskID? {
        core.pointee.descriptors.firstIndex { $0.name == name }.map { TaskID(index: $0) }
    }

    private func freezeIfNeeded() {
        if frozen.load(ordering: .relaxed) { return }
        core.pointee.origin = clock.now()
        frozen.store(true, ordering: .releasing)
    }

    // MARK: dispatch

    /// Runs every job that is core.pointee.ready now, in dispatch order, until none is left; then returns the
    /// next periodic release instant (`distantFuture` if none). Only one thread may dispatch.
    /// Periodic releases after `limit` are left for a later call (virtual time stops there).
    ///
    /// Real-time safe in steady state: no allocation, no blocking (queue locks are held for a few
    /// instructions by producers).
    @discardableResult
    public func dispatchReady(releasingUntil limit: Instant = .distantFuture) -> Instant {
        freezeIfNeeded()
        while !stopRequested.load(ordering: .relaxed) {
            collectIngress()
            if !core.pointee.periodicTasks.isEmpty { releaseDuePeriodic(now: min(clock.now(), limit)) }
            guard let entry = core.pointee.ready.popMin() else { break }
            switch entry.runnable {
            case .source(let s):
                // Swap out rather than copy + reset: no retain/release, one move.
                var event = Event.empty
                swap(&event, &core.pointee.staged[s])
                core.pointee.isStaged[s] = false
                run(event, task: core.pointee.sourceTasks[s])
                stage(source: s)
            case .periodic(let p):
                let end = run(core.pointee.periodicEvent[p], task: core.pointee.periodicTasks[p])
                skipInstantsPassedDuringOwnJob(p, now: end)
                core.pointee.periodicPending[p] = false
            }
        }
        return core.pointee.nextTimer
    }

    private func collectIngress() {
        let words = (core.pointee.sourceTasks.count + 63) / 64
        for word in 0..<words {
            var bits = hub.doorbell.take(word: word)
            while bits != 0 {
                let s = word * 64 + bits.trailingZeroBitCount
                bits &= bits &- 1
                if s < core.pointee.isStaged.count && !core.pointee.isStaged[s] { stage(source: s) }
            }
        }
    }

    private func stage(source s: Int) {
        let task = core.pointee.sourceTasks[s]
        // The staged slot holds an empty event here; the queue swaps its oldest event into it.
        guard let queue = core.pointee.descriptors[task].queue else { return }
        switch queue.tryPop(into: &core.pointee.staged[s]) {
        case .popped: core.pointee.busyPasses[s] = 0
        case .empty: core.pointee.busyPasses[s] = 0; return
        case .busy where core.pointee.busyPasses[s] == 0:
            // A producer holds the queue's lock for a few instructions (on another CPU): come back
            // to it after the rest rather than sleep on that lock.
            core.pointee.busyPasses[s] = 1
            hub.doorbell.ring(s)
            return
        case .busy:
            // Busy again: its holder may be preempted on this very CPU, where retrying would spin
            // forever above it. Take the lock: its priority inheritance runs the holder at once.
            core.pointee.busyPasses[s] = 0
            guard queue.pop(into: &core.pointee.staged[s]) else { return }
        }
        core.pointee.isStaged[s] = true
        let stats = core.pointee.descriptors[task].stats
        stats.bump(stats.releases)
        core.pointee.ready.push(ReadyEntry(priority: core.pointee.staged[s].priority.rawValue,
                                           deadline: core.pointee.staged[s].deadline.nanoseconds,
                                           sequence: core.pointee.staged[s].sequence, runnable: .source(s)))
    }

    /// The release rule (see docs/scheduler.md):
    /// 1. At most one job per periodic task is outstanding.
    /// 2. Grid instants that pass while the task's own job is still queued or running are skipped
    ///    and counted; the next release is the first grid instant after that job completes. An
    ///    overrunning task therefore never gets a catch-up burst, and after each of its jobs the
    ///    rest of its class has until the next grid instant — it cannot starve them (rclcpp #392).
    /// 3. Grid instants that pass while the task was idle but the dispatcher was busy elsewhere:
    ///    the latest is released (late: lateness is counted), the earlier ones are skipped.
    private func skipInstantsPassedDuringOwnJob(_ p: Int, now: Instant) {
        let spec = core.pointee.periodicSpecs[p]
        let since = now.nanoseconds(since: core.pointee.origin)
        let k = core.pointee.nextGridIndex[p]
        guard spec.phase &+ k &* spec.period <= since else { return }
        let latest = (since - spec.phase) / spec.period
        let skip = latest - k + 1
        let task = core.pointee.periodicTasks[p]
        core.pointee.descriptors[task].stats.skipped.add(UInt64(skip), ordering: .relaxed)
        let instant = core.pointee.origin.advanced(byNanoseconds: spec.phase &+ k &* spec.period)
        missLog.append(MissRecord(task: TaskID(index: task), kind: .skippedRelease, release: instant,
                                  deadline: instant.advanced(byNanoseconds: spec.deadline), at: now, amount: skip))
        core.pointee.nextGridIndex[p] = latest + 1
    }
    private func releaseDuePeriodic(now: Instant) {
        guard !core.pointee.periodicTasks.isEmpty else { return }
        var earliest = Instant.distantFuture
        let since = now.nanoseconds(since: core.pointee.origin)
        for p in core.pointee.periodicTasks.indices {
            let spec = core.pointee.periodicSpecs[p]
            var k = core.pointee.nextGridIndex[p]
            let due = spec.phase &+ k &* spec.period
            if due <= since {
                let latest = (since - spec.phase) / spec.period
                let passed = latest - k + 1
                let task = core.pointee.periodicTasks[p]
                let stats = core.pointee.descriptors[task].stats
                let skip = core.pointee.periodicPending[p] ? passed : passed - 1
                if skip > 0 {
                    stats.skipped.add(UInt64(skip), ordering: .relaxed)
                    let instant = core.pointee.origin.advanced(byNanoseconds: spec.phase &+ k &* spec.period)
                    missLog.append(MissRecord(task: TaskID(index: task), kind: .skippedRelease, release: instant,
                                              deadline: instant.advanced(byNanoseconds: spec.deadline),
                                              at: now, amount: skip))
                }
                if !core.pointee.periodicPending[p] {
                    let release = core.pointee.origin.advanced(byNanoseconds: spec.phase &+ latest &* spec.period)
                    let event = Event(source: SourceID(index: -1), priority: core.pointee.descriptors[task].priority,
                                      release: release, deadline: release.advanced(byNanoseconds: spec.deadline),
                                      sequence: hub.nextSequence(), payload: .none)
                    core.pointee.periodicEvent[p] = event
                    core.pointee.periodicPending[p] = true
                    stats.bump(stats.releases)
                    core.pointee.ready.push(ReadyEntry(priority: event.priority.rawValue, deadline: event.deadline.nanoseconds,
                                          sequence: event.sequence, runnable: .periodic(p)))
                }
                k = latest + 1
                core.pointee.nextGridIndex[p] = k
            }
            let next = core.pointee.origin.advanced(byNanoseconds: spec.phase &+ k &* spec.period)
            if next < earliest { earliest = next }
        }
        core.pointee.nextTimer = earliest
    }

    /// Runs one job with its accounting; returns the instant it ended.
    @discardableResult
    private func run(_ event: Event, task t: Int) -> Instant {
        let stats = core.pointee.descriptors[t].stats
        let start = clock.now()
        if start > event.deadline {
            stats.bump(stats.startLate)
            missLog.append(MissRecord(task: TaskID(index: t), kind: .startLate, release: event.release,
                                      deadline: event.deadline, at: start,
                                      amount: start.nanoseconds(since: event.deadline)))
            if core.pointee.descriptors[t].whenLate == .dropAndCount {
                stats.bump(stats.droppedLate)
                missLog.append(MissRecord(task: TaskID(index: t), kind: .droppedLate, release: event.release,
                                          deadline: event.deadline, at: start,
                                          amount: start.nanoseconds(since: event.deadline)))
                noteMiss(task: t, at: start)
                return start
            }
        }
        stats.startLatency.record(nanoseconds: start.nanoseconds(since: event.release))
        progress.begin(task: t, at: start)
        core.pointee.descriptors[t].handler(event)
        let end = clock.now()
        if progress.end() { noteStallRecovered(task: t, event: event, start: start, end: end) }
        stats.bump(stats.completions)
        stats.responseTime.record(nanoseconds: end.nanoseconds(since: event.release))
        let lateness = end.nanoseconds(since: event.deadline)
        stats.noteLateness(lateness)
        if lateness > 0 {
            stats.bump(stats.finishLate)
            missLog.append(MissRecord(task: TaskID(index: t), kind: .finishLate, release: event.release,
                                      deadline: event.deadline, at: end, amount: lateness))
            noteMiss(task: t, at: end)
        } else {
            core.pointee.consecutiveMisses[t] = 0
        }
        return end
    }

    /// K misses in a row raise exactly one fault; the streak must be broken by an on-time
    /// completion before another fault can be raised.
    private func noteMiss(task t: Int, at instant: Instant) {
        core.pointee.consecutiveMisses[t] += 1
        guard let critical = core.pointee.descriptors[t].critical, core.pointee.consecutiveMisses[t] == critical.consecutiveMisses else { return }
        let stats = core.pointee.descriptors[t].stats
        stats.bump(stats.faults)
        missLog.append(MissRecord(task: TaskID(index: t), kind: .deadlineFault, release: instant,
                                  deadline: instant, at: instant, amount: Int64(core.pointee.consecutiveMisses[t])))
        core.pointee.faultHandler?(DeadlineFault(task: TaskID(index: t), taskName: core.pointee.descriptors[t].name,
                                    consecutiveMisses: core.pointee.consecutiveMisses[t],
                                    limit: critical.consecutiveMisses, at: instant))
    }

    /// The supervisor reported this run as stalled: tell the runtime first (its guard latches a
    /// stop it could not record while the thread was stuck), then keep the record.
    private func noteStallRecovered(task t: Int, event: Event, start: Instant, end: Instant) {
        missLog.append(MissRecord(task: TaskID(index: t), kind: .stall, release: event.release,
                                  deadline: event.deadline, at: end, amount: end.nanoseconds(since: start)))
        core.pointee.stallRecoveredHandler?(StallRecovery(task: TaskID(index: t), taskName: core.pointee.descriptors[t].name,
                                                          startedAt: start, endedAt: end))
    }

    // MARK: virtual time (tests, lockstep simulation)

    /// Runs everything core.pointee.ready at the current instant.
    public func runUntilIdle() {
        dispatchReady()
    }

    /// Moves a virtual clock forward to `target`, stopping at every periodic release on the way
    /// and dispatching what is core.pointee.ready there (like NIO's `EmbeddedEventLoop.advanceTime(to:)`).
    public func advance(to target: Instant) {
        guard let virtual = clock as? VirtualClock else {
            preconditionFailure("advance(to:) needs a VirtualClock")
        }
        var next = dispatchReady(releasingUntil: target)
        while next <= target {
            virtual.advance(to: next)
            next = dispatchReady(releasingUntil: target)
        }
        virtual.advance(to: target)
        dispatchReady(releasingUntil: target)
    }

    public func advance(by duration: Duration) {
        advance(to: clock.now() + duration)
    }

    /// True when no job is core.pointee.ready or queued (periodic tasks still have future releases).
    /// Dispatching thread only (or once the dispatch thread has stopped).
    public var hasPendingWork: Bool {
        if !core.pointee.ready.isEmpty { return true }
        return core.pointee.descriptors.contains { ($0.queue?.depth.load(ordering: .relaxed) ?? 0) > 0 }
    }

    // MARK: accounting

    /// A consistent-per-counter copy of every task's accounting since start. Any thread; allocates.
    /// It never takes the accounting window's samples (see `makeAccountingWindow()`).
    public func snapshot() -> SchedulerSnapshot {
        let tasks = core.pointee.descriptors.enumerated().map { index, d -> TaskSnapshot in
            let s = d.stats
            let worst = s.worstLateness.load(ordering: .relaxed)
            return TaskSnapshot(
                id: TaskID(index: index), name: d.name, kind: d.kind, priority: d.priority,
                critical: d.critical != nil,
                releases: s.releases.load(ordering: .relaxed),
                completions: s.completions.load(ordering: .relaxed),
                startLateMisses: s.startLate.load(ordering: .relaxed),
                finishLateMisses: s.finishLate.load(ordering: .relaxed),
                droppedLate: s.droppedLate.load(ordering: .relaxed),
                skippedReleases: s.skipped.load(ordering: .relaxed),
                deadlineFaults: s.faults.load(ordering: .relaxed),
                stalls: s.stalls.load(ordering: .relaxed),
                worstLatenessNs: worst == .min ? nil : worst,
                startLatency: s.startLatency.summary(),
                responseTime: s.responseTime.summary(),
                latencySamplesSkipped: s.startLatency.skipped.load(ordering: .relaxed) &+ s.responseTime.skipped.load(ordering: .relaxed),
                queue: d.queue.map(QueueSnapshot.init))
        }
        return SchedulerSnapshot(at: clock.now(), tasks: tasks,
                                 missLogOverwritten: missLog.lost,
                                 stalls: progress.stalls.load(ordering: .relaxed))
    }

    /// The one reader of accounting windows (see `AccountingWindow`): the first call returns it,
    /// every later call throws, since two owners would split each window between them. Any
    /// thread; `snapshot()` keeps working beside it and never takes its samples.
    public func makeAccountingWindow() throws(AccountingWindowError) -> AccountingWindow {
        guard windowOwned.compareExchange(expected: false, desired: true, ordering: .acquiringAndReleasing).exchanged else {
            throw AccountingWindowError.alreadyOwned
        }
        return AccountingWindow(scheduler: self)
    }

    /// What the window's owner needs of every task: its descriptor (never mutated after the freeze).
    var taskDescriptors: [TaskDescriptor] { core.pointee.descriptors }

    /// The task whose handler the supervisor reported stalled and that has not returned yet (the
    /// dispatch thread is stuck in it now; the actuators were put in their safe state); nil when
    /// none. Any thread; lock-free.
    public var stalledTask: String? {
        guard let run = progress.observe(), run.reported, core.pointee.descriptors.indices.contains(run.task) else { return nil }
        return core.pointee.descriptors[run.task].name
    }

    /// The statistics object of one task (for latency histograms in benchmarks).
    public func statistics(for task: TaskID) -> TaskStatistics { core.pointee.descriptors[task.index].stats }

    // MARK: thread mode

    /// Starts the dispatch thread with the given real-time setup, then (unless disabled) its
    /// supervisor. Returns what was applied to the dispatch thread (`supervisorReport`: the rest).
    @discardableResult
    public func start(realtime: RealtimeOptions = RealtimeOptions(),
                      supervisor supervision: SupervisorOptions = SupervisorOptions()) throws -> RealtimeReport {
        precondition(!clock.isVirtual, "a virtual-clock scheduler is driven by advance(to:), not a thread")
        let applied = Mutex<RealtimeReport?>(nil)
        let started = Atomic<Bool>(false)
        // Twice the stack it prefaults (RealtimeOptions.prefaultStackBytes), so the prefault never reaches the guard page.
        let thread = try RealtimeThread(name: "robotd-dispatch", stackBytes: 512 * 1024) { [self] in
            let report = RealtimeSetup.apply(realtime, logger: logger)
            applied.withLock { $0 = report }
            started.store(true, ordering: .releasing)
            core.pointee.threadStartHandler?()
            runLoop()
            core.pointee.threadStopHandler?()
            report.release()
        }
        runningThread.withLock { $0 = thread }
        while !started.load(ordering: .acquiring) { sched_yield() }
        let report = applied.withLock { $0 } ?? RealtimeReport()
        lastReport.withLock { $0 = report }
        if supervision.enabled {
            do {
                try startSupervisor(supervision, dispatch: report)
            } catch {
                stop()
                throw error
            }
        }
        return report
    }

    /// Budget per task (index = TaskID.index): its own, or the scheduler-wide default.
    public func handlerBudgets(_ options: SupervisorOptions = SupervisorOptions()) -> [Duration] {
        let descriptors = core.pointee.descriptors
        let criticalPeriods = descriptors.compactMap { $0.critical != nil ? $0.period : nil }
        let fallback = Supervisor.defaultBudget(criticalPeriods: criticalPeriods, options: options)
        return descriptors.map { $0.budget ?? fallback }
    }

    private func startSupervisor(_ options: SupervisorOptions, dispatch: RealtimeReport) throws {
        // The descriptors no longer change once dispatch has begun, so the supervisor keeps copies.
        let descriptors = core.pointee.descriptors
        let budgets = handlerBudgets(options)
        let watch = SupervisorThread.Watch(
            clock: clock, progress: progress, budgets: budgets.map(\.nanoseconds), names: descriptors.map(\.name),
            stats: descriptors.map(\.stats),
            interval: Supervisor.checkInterval(budgets: budgets, options: options).nanoseconds,
            onStall: core.pointee.stallHandler)
        let thread = try SupervisorThread(watch: watch, options: options, dispatch: dispatch, budgets: budgets, logger: logger)
        supervisor.withLock { $0 = thread }
        lastSupervisorReport.withLock { $0 = thread.report }
    }

    private func runLoop() {
        while !stopRequested.load(ordering: .relaxed) {
            let next = dispatchReady()
            if stopRequested.load(ordering: .relaxed) { break }
            hub.doorbell.wait(until: next)
        }
    }

    /// Stops the dispatch thread and joins it. Posts after this return `.stopped`.
    public func stop() {
        hub.closed.store(true, ordering: .relaxed)
        stopRequested.store(true, ordering: .relaxed)
        hub.doorbell.nudge()
        let thread = runningThread.withLock { t -> RealtimeThread? in
            let current = t
            t = nil
            return current
        }
        thread?.join()
        // After the join: a handler stuck while stopping is still watched.
        let watcher = supervisor.withLock { s -> SupervisorThread? in
            let current = s
            s = nil
            return current
        }
        watcher?.stop()
    }

    public var realtimeReport: RealtimeReport? { lastReport.withLock { $0 } }
    /// What the supervisor thread got and the budgets it enforces; nil before `start` or when disabled.
    public var supervisorReport: SupervisorReport? { lastSupervisorReport.withLock { $0 } }

    deinit {
        stop()
        core.deinitialize(count: 1)
        core.deallocate()
    }
}

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

    /// Called on the dispatch thread when a critical task reaches its consecutive-miss limit.
    public var onDeadlineFault: (@Sendable (DeadlineFault) -> Void)? {
        get { faultHandler }
        set { precondition(!isFrozen, "configure the scheduler before it dispatches"); faultHandler = newValue }
    }
    private var faultHandler: (@Sendable (DeadlineFault) -> Void)?

    // Configuration: immutable once frozen, then safe to read from any thread.
    struct TaskDescriptor {
        let name: String
        let kind: TaskSnapshot.Kind
        let priority: PriorityClass
        let whenLate: LatePolicy
        let critical: CriticalPolicy?
        let stats: TaskStatistics
        let queue: IngressQueue?
        let handler: EventHandler
    }
    private var descriptors: [TaskDescriptor] = []
    private var sourceTasks: [Int] = []        // source index → task index
    private var periodicTasks: [Int] = []      // periodic index → task index
    private var periodicSpecs: [(phase: Int64, period: Int64, deadline: Int64)] = []
    private let frozen = Atomic<Bool>(false)
    var isFrozen: Bool { frozen.load(ordering: .acquiring) }
    /// Periodic releases are at origin + phase + k·period; origin is the clock at the first dispatch.
    public private(set) var origin: Instant = .zero

    // Dispatch state: only the dispatching thread touches these.
    private var ready: ReadyQueue
    private var staged: [Event] = []
    private var isStaged: [Bool] = []
    private var consecutiveMisses: [Int] = []
    private var nextGridIndex: [Int64] = []
    private var periodicPending: [Bool] = []
    private var periodicEvent: [Event] = []
    private var nextTimer: Instant = .distantFuture

    // Thread mode.
    let stopRequested = Atomic<Bool>(false)
    private let runningThread = Mutex<RealtimeThread?>(nil)
    private let lastReport = Mutex<RealtimeReport?>(nil)

    public init(clock: any SchedulerClock, logger: Logger = Logger(label: "robotd.scheduler"),
                maxRunnables: Int = 256, missLogCapacity: Int = 1024) {
        self.clock = clock
        self.logger = logger
        self.maxRunnables = maxRunnables
        self.missLog = MissLog(capacity: missLogCapacity, filler: .filler)
        self.hub = IngressHub(doorbell: Doorbell(bits: maxRunnables), clock: clock)
        self.ready = ReadyQueue(capacity: maxRunnables)
    }

    // MARK: configuration

    /// Adds a source with its bounded ingress queue and its one subscription.
    public func addSource(_ name: String, queue: QueueSpec, subscription: Subscription,
                          handler: @escaping EventHandler) -> SourceHandle {
        precondition(!isFrozen, "configure the scheduler before it dispatches")
        precondition(descriptors.count < maxRunnables, "more runnables than maxRunnables")
        let ingress = IngressQueue(spec: queue)
        let sourceIndex = sourceTasks.count
        sourceTasks.append(descriptors.count)
        descriptors.append(TaskDescriptor(
            name: name, kind: .event, priority: subscription.priority, whenLate: subscription.whenLate,
            critical: subscription.critical, stats: TaskStatistics(), queue: ingress, handler: handler))
        consecutiveMisses.append(0)
        staged.append(Event.empty)
        isStaged.append(false)
        return SourceHandle(id: SourceID(index: sourceIndex), name: name, priority: subscription.priority,
                            relativeDeadline: subscription.relativeDeadline,
                            deadlineNanoseconds: subscription.relativeDeadline.nanoseconds,
                            queue: ingress, hub: hub)
    }

    /// Adds a periodic task. Its handler receives an event whose `release` is the grid instant.
    @discardableResult
    public func addPeriodic(_ name: String, _ spec: PeriodicSpec, handler: @escaping EventHandler) -> TaskID {
        precondition(!isFrozen, "configure the scheduler before it dispatches")
        precondition(descriptors.count < maxRunnables, "more runnables than maxRunnables")
        let id = TaskID(index: descriptors.count)
        periodicTasks.append(descriptors.count)
        descriptors.append(TaskDescriptor(
            name: name, kind: .periodic, priority: spec.priority, whenLate: spec.whenLate,
            critical: spec.critical, stats: TaskStatistics(), queue: nil, handler: handler))
        periodicSpecs.append((spec.phase.nanoseconds, spec.period.nanoseconds, spec.relativeDeadline.nanoseconds))
        consecutiveMisses.append(0)
        nextGridIndex.append(0)
        periodicPending.append(false)
        periodicEvent.append(Event.empty)
        return id
    }

    public func taskID(named name: String) -> TaskID? {
        descriptors.firstIndex { $0.name == name }.map { TaskID(index: $0) }
    }

    private func freezeIfNeeded() {
        if frozen.load(ordering: .relaxed) { return }
        origin = clock.now()
        frozen.store(true, ordering: .releasing)
    }

    // MARK: dispatch

    /// Runs every job that is ready now, in dispatch order, until none is left; then returns the
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
            releaseDuePeriodic(now: min(clock.now(), limit))
            guard let entry = ready.popMin() else { break }
            switch entry.runnable {
            case .source(let s):
                let event = staged[s]
                isStaged[s] = false
                staged[s] = Event.empty
                run(event, task: sourceTasks[s])
                stage(source: s)
            case .periodic(let p):
                let event = periodicEvent[p]
                run(event, task: periodicTasks[p])
                skipInstantsPassedDuringOwnJob(p, now: clock.now())
                periodicPending[p] = false
            }
        }
        return nextTimer
    }

    private func collectIngress() {
        let words = (sourceTasks.count + 63) / 64
        for word in 0..<words {
            var bits = hub.doorbell.take(word: word)
            while bits != 0 {
                let s = word * 64 + bits.trailingZeroBitCount
                bits &= bits &- 1
                if s < isStaged.count && !isStaged[s] { stage(source: s) }
            }
        }
    }

    private func stage(source s: Int) {
        guard let queue = descriptors[sourceTasks[s]].queue, let event = queue.pop() else { return }
        staged[s] = event
        isStaged[s] = true
        descriptors[sourceTasks[s]].stats.bump(descriptors[sourceTasks[s]].stats.releases)
        ready.push(ReadyEntry(priority: event.priority.rawValue, deadline: event.deadline.nanoseconds,
                              sequence: event.sequence, runnable: .source(s)))
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
        let spec = periodicSpecs[p]
        let since = now.nanoseconds(since: origin)
        let k = nextGridIndex[p]
        guard spec.phase &+ k &* spec.period <= since else { return }
        let latest = (since - spec.phase) / spec.period
        let skip = latest - k + 1
        let task = periodicTasks[p]
        descriptors[task].stats.skipped.add(UInt64(skip), ordering: .relaxed)
        let instant = origin.advanced(byNanoseconds: spec.phase &+ k &* spec.period)
        missLog.append(MissRecord(task: TaskID(index: task), kind: .skippedRelease, release: instant,
                                  deadline: instant.advanced(byNanoseconds: spec.deadline), at: now, amount: skip))
        nextGridIndex[p] = latest + 1
    }
    private func releaseDuePeriodic(now: Instant) {
        guard !periodicTasks.isEmpty else { return }
        var earliest = Instant.distantFuture
        let since = now.nanoseconds(since: origin)
        for p in periodicTasks.indices {
            let spec = periodicSpecs[p]
            var k = nextGridIndex[p]
            let due = spec.phase &+ k &* spec.period
            if due <= since {
                let latest = (since - spec.phase) / spec.period
                let passed = latest - k + 1
                let task = periodicTasks[p]
                let stats = descriptors[task].stats
                let skip = periodicPending[p] ? passed : passed - 1
                if skip > 0 {
                    stats.skipped.add(UInt64(skip), ordering: .relaxed)
                    let instant = origin.advanced(byNanoseconds: spec.phase &+ k &* spec.period)
                    missLog.append(MissRecord(task: TaskID(index: task), kind: .skippedRelease, release: instant,
                                              deadline: instant.advanced(byNanoseconds: spec.deadline),
                                              at: now, amount: skip))
                }
                if !periodicPending[p] {
                    let release = origin.advanced(byNanoseconds: spec.phase &+ latest &* spec.period)
                    let event = Event(source: SourceID(index: -1), priority: descriptors[task].priority,
                                      release: release, deadline: release.advanced(byNanoseconds: spec.deadline),
                                      sequence: hub.nextSequence(), payload: .none)
                    periodicEvent[p] = event
                    periodicPending[p] = true
                    stats.bump(stats.releases)
                    ready.push(ReadyEntry(priority: event.priority.rawValue, deadline: event.deadline.nanoseconds,
                                          sequence: event.sequence, runnable: .periodic(p)))
                }
                k = latest + 1
                nextGridIndex[p] = k
            }
            let next = origin.advanced(byNanoseconds: spec.phase &+ k &* spec.period)
            if next < earliest { earliest = next }
        }
        nextTimer = earliest
    }

    private func run(_ event: Event, task t: Int) {
        let descriptor = descriptors[t]
        let stats = descriptor.stats
        let start = clock.now()
        if start > event.deadline {
            stats.bump(stats.startLate)
            missLog.append(MissRecord(task: TaskID(index: t), kind: .startLate, release: event.release,
                                      deadline: event.deadline, at: start,
                                      amount: start.nanoseconds(since: event.deadline)))
            if descriptor.whenLate == .dropAndCount {
                stats.bump(stats.droppedLate)
                missLog.append(MissRecord(task: TaskID(index: t), kind: .droppedLate, release: event.release,
                                          deadline: event.deadline, at: start,
                                          amount: start.nanoseconds(since: event.deadline)))
                noteMiss(task: t, at: start)
                return
            }
        }
        stats.startLatency.record(nanoseconds: start.nanoseconds(since: event.release))
        descriptor.handler(event)
        let end = clock.now()
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
            consecutiveMisses[t] = 0
        }
    }

    /// K misses in a row raise exactly one fault; the streak must be broken by an on-time
    /// completion before another fault can be raised.
    private func noteMiss(task t: Int, at instant: Instant) {
        consecutiveMisses[t] += 1
        guard let critical = descriptors[t].critical, consecutiveMisses[t] == critical.consecutiveMisses else { return }
        let stats = descriptors[t].stats
        stats.bump(stats.faults)
        missLog.append(MissRecord(task: TaskID(index: t), kind: .deadlineFault, release: instant,
                                  deadline: instant, at: instant, amount: Int64(consecutiveMisses[t])))
        faultHandler?(DeadlineFault(task: TaskID(index: t), taskName: descriptors[t].name,
                                    consecutiveMisses: consecutiveMisses[t],
                                    limit: critical.consecutiveMisses, at: instant))
    }

    // MARK: virtual time (tests, lockstep simulation)

    /// Runs everything ready at the current instant.
    public func runUntilIdle() {
        dispatchReady()
    }

    /// Moves a virtual clock forward to `target`, stopping at every periodic release on the way
    /// and dispatching what is ready there (like NIO's `EmbeddedEventLoop.advanceTime(to:)`).
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

    /// True when no job is ready or queued (periodic tasks still have future releases).
    /// Dispatching thread only (or once the dispatch thread has stopped).
    public var hasPendingWork: Bool {
        if !ready.isEmpty { return true }
        return descriptors.contains { ($0.queue?.depth.load(ordering: .relaxed) ?? 0) > 0 }
    }

    // MARK: accounting

    /// A consistent-per-counter copy of every task's accounting. Any thread; allocates.
    public func snapshot() -> SchedulerSnapshot {
        let tasks = descriptors.enumerated().map { index, d -> TaskSnapshot in
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
                worstLatenessNs: worst == .min ? nil : worst,
                startLatency: s.startLatency.summary(),
                responseTime: s.responseTime.summary(),
                queue: d.queue.map { q in
                    QueueSnapshot(capacity: q.spec.capacity, overflow: q.spec.overflow,
                                  depth: q.depth.load(ordering: .relaxed),
                                  highWater: q.highWater.load(ordering: .relaxed),
                                  produced: q.produced.load(ordering: .relaxed),
                                  dropped: q.dropped.load(ordering: .relaxed),
                                  rejected: q.rejected.load(ordering: .relaxed))
                })
        }
        return SchedulerSnapshot(at: clock.now(), tasks: tasks,
                                 missLogOverwritten: missLog.overwritten.load(ordering: .relaxed))
    }

    /// The statistics object of one task (for latency histograms in benchmarks).
    public func statistics(for task: TaskID) -> TaskStatistics { descriptors[task.index].stats }

    // MARK: thread mode

    /// Starts the dispatch thread with the given real-time setup. Returns what was applied.
    @discardableResult
    public func start(realtime: RealtimeOptions = RealtimeOptions()) throws -> RealtimeReport {
        precondition(!clock.isVirtual, "a virtual-clock scheduler is driven by advance(to:), not a thread")
        let ready = Mutex<RealtimeReport?>(nil)
        let started = Atomic<Bool>(false)
        let thread = try RealtimeThread(name: "robotd-dispatch") { [self] in
            let report = RealtimeSetup.apply(realtime, logger: logger)
            ready.withLock { $0 = report }
            started.store(true, ordering: .releasing)
            runLoop()
            report.release()
        }
        runningThread.withLock { $0 = thread }
        while !started.load(ordering: .acquiring) { sched_yield() }
        let report = ready.withLock { $0 } ?? RealtimeReport()
        lastReport.withLock { $0 = report }
        return report
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
    }

    public var realtimeReport: RealtimeReport? { lastReport.withLock { $0 } }

    deinit { stop() }
}

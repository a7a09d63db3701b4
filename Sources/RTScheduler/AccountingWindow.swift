import Synchronization

public enum AccountingWindowError: Error, Equatable, CustomStringConvertible {
    /// `makeAccountingWindow()` was called before: one owner only.
    case alreadyOwned

    public var description: String {
        "the scheduler's accounting window has an owner already (two readers would split each window)"
    }
}

/// The single reader of the scheduler's accounting windows (telemetry): each `read()` returns
/// every task's figures for the window since the previous read and since start, every queue,
/// and the miss records appended since the previous read.
///
/// Why one owner: latency histograms and the worst lateness are reset per window; a second
/// reader taking windows would leave each with part of the samples. `Scheduler.snapshot()`
/// (progress lines, summaries) reads only the since-start figures and takes nothing from the
/// window. The miss log is read through a cursor of its own, so a `drain()` elsewhere does not
/// take records from it either.
///
/// Nothing here runs on the dispatch thread: the dispatch thread's recording is unchanged (a
/// relaxed atomic per counter, a lock-free histogram record); window bookkeeping is the reader's.
public final class AccountingWindow: Sendable {
    private let scheduler: Scheduler
    private let state: Mutex<State>

    struct State {
        var previous: [TaskCounters] = []
        var windowStart: Instant
        var missCursor: MissLog.Cursor
    }

    init(scheduler: Scheduler) {
        self.scheduler = scheduler
        // The window starts now; the miss log is read from its oldest record still held, so the
        // misses before the owner existed are not lost to it.
        state = Mutex(State(windowStart: scheduler.clock.now(), missCursor: scheduler.missLog.oldestCursor))
    }

    /// The window since the last read (the first: since the owner was made), and every figure
    /// since start. Allocates: a reader thread, never the dispatch thread.
    public func read() -> AccountingReport {
        let descriptors = scheduler.taskDescriptors
        return state.withLock { s in
            let now = scheduler.clock.now()
            var tasks: [TaskAccounting] = []
            tasks.reserveCapacity(descriptors.count)
            for (index, d) in descriptors.enumerated() {
                let stats = d.stats
                let counters = TaskCounters(stats)
                let before = index < s.previous.count ? s.previous[index] : TaskCounters()
                let start = stats.startLatency.takeWindow()
                let response = stats.responseTime.takeWindow()
                let windowWorst = stats.windowWorstLateness.exchange(.min, ordering: .relaxed)
                let totalWorst = stats.worstLateness.load(ordering: .relaxed)
                tasks.append(TaskAccounting(
                    id: TaskID(index: index), name: d.name, kind: d.kind, priority: d.priority, critical: d.critical != nil,
                    period: d.period, relativeDeadline: d.relativeDeadline,
                    window: TaskFigures(counters.minus(before), startLatency: start.window, responseTime: response.window,
                                        worstLatenessNs: windowWorst == .min ? nil : windowWorst),
                    total: TaskFigures(counters, startLatency: start.total, responseTime: response.total,
                                       worstLatenessNs: totalWorst == .min ? nil : totalWorst),
                    queue: d.queue.map(QueueSnapshot.init)))
                if index < s.previous.count { s.previous[index] = counters } else { s.previous.append(counters) }
            }
            let lostBefore = s.missCursor.lost
            let misses = scheduler.missLog.read(from: &s.missCursor)
            let report = AccountingReport(
                at: now, windowStart: s.windowStart, tasks: tasks, misses: misses,
                missesLost: s.missCursor.lost &- lostBefore, missesLostTotal: s.missCursor.lost,
                dispatchStalls: scheduler.progress.stalls.load(ordering: .relaxed))
            s.windowStart = now
            return report
        }
    }
}

/// One read of the accounting window.
public struct AccountingReport: Sendable, Equatable {
    /// When it was read (the window's end).
    public var at: Instant
    /// The previous read (the first time: when the owner was made).
    public var windowStart: Instant
    public var tasks: [TaskAccounting]
    /// Miss records appended since the previous read, oldest first (every `MissKind`).
    public var misses: [MissRecord]
    /// Miss records overwritten before this read reached them (the ring is bounded): in this
    /// window, and since the owner was made.
    public var missesLost: UInt64
    public var missesLostTotal: UInt64
    /// Stalls of the dispatch thread reported by the supervisor (all tasks, since start).
    public var dispatchStalls: UInt64

    public var windowNanoseconds: Int64 { at.nanoseconds(since: windowStart) }
    public func task(named name: String) -> TaskAccounting? { tasks.first { $0.name == name } }
}

/// A task in one read: what it is, its window and its figures since start.
public struct TaskAccounting: Sendable, Equatable {
    public var id: TaskID
    public var name: String
    public var kind: TaskSnapshot.Kind
    public var priority: PriorityClass
    public var critical: Bool
    /// Periodic tasks: their period; event tasks: nil.
    public var period: Duration?
    public var relativeDeadline: Duration
    public var window: TaskFigures
    public var total: TaskFigures
    /// Event tasks: their source's queue (depth now, high-water mark and drops since start).
    public var queue: QueueSnapshot?
}

/// A task's deadline figures over some span (a window, or since start).
public struct TaskFigures: Sendable, Equatable {
    public var releases: UInt64 = 0
    public var completions: UInt64 = 0
    /// Every miss: finish-late (including start-late jobs that ran) and dropped-late.
    public var misses: UInt64 = 0
    public var startLate: UInt64 = 0
    public var droppedLate: UInt64 = 0
    public var skippedReleases: UInt64 = 0
    public var deadlineFaults: UInt64 = 0
    public var stalls: UInt64 = 0
    public var latencySamplesSkipped: UInt64 = 0
    public var startLatency = LatencySummary()
    public var responseTime = LatencySummary()
    /// Largest (finish − deadline), ns; negative: every job finished early; nil: no job finished.
    public var worstLatenessNs: Int64?

    public init() {}

    init(_ c: TaskCounters, startLatency: LatencySummary, responseTime: LatencySummary, worstLatenessNs: Int64?) {
        releases = c.releases
        completions = c.completions
        misses = c.finishLate &+ c.droppedLate
        startLate = c.startLate
        droppedLate = c.droppedLate
        skippedReleases = c.skipped
        deadlineFaults = c.faults
        stalls = c.stalls
        latencySamplesSkipped = c.latencySkipped
        self.startLatency = startLatency
        self.responseTime = responseTime
        self.worstLatenessNs = worstLatenessNs
    }

    /// Misses per release (0 without releases).
    public var missRatio: Double { releases == 0 ? 0 : Double(misses) / Double(releases) }
}

/// A task's monotonic counters at one instant.
struct TaskCounters: Equatable {
    var releases: UInt64 = 0
    var completions: UInt64 = 0
    var startLate: UInt64 = 0
    var finishLate: UInt64 = 0
    var droppedLate: UInt64 = 0
    var skipped: UInt64 = 0
    var faults: UInt64 = 0
    var stalls: UInt64 = 0
    var latencySkipped: UInt64 = 0

    init() {}

    init(_ s: TaskStatistics) {
        releases = s.releases.load(ordering: .relaxed)
        completions = s.completions.load(ordering: .relaxed)
        startLate = s.startLate.load(ordering: .relaxed)
        finishLate = s.finishLate.load(ordering: .relaxed)
        droppedLate = s.droppedLate.load(ordering: .relaxed)
        skipped = s.skipped.load(ordering: .relaxed)
        faults = s.faults.load(ordering: .relaxed)
        stalls = s.stalls.load(ordering: .relaxed)
        latencySkipped = s.startLatency.skipped.load(ordering: .relaxed) &+ s.responseTime.skipped.load(ordering: .relaxed)
    }

    func minus(_ o: TaskCounters) -> TaskCounters {
        var d = TaskCounters()
        d.releases = releases &- o.releases
        d.completions = completions &- o.completions
        d.startLate = startLate &- o.startLate
        d.finishLate = finishLate &- o.finishLate
        d.droppedLate = droppedLate &- o.droppedLate
        d.skipped = skipped &- o.skipped
        d.faults = faults &- o.faults
        d.stalls = stalls &- o.stalls
        d.latencySkipped = latencySkipped &- o.latencySkipped
        return d
    }
}

extension QueueSnapshot {
    init(_ q: IngressQueue) {
        self.init(capacity: q.spec.capacity, overflow: q.spec.overflow,
                  depth: q.depth.load(ordering: .relaxed),
                  highWater: q.highWater.load(ordering: .relaxed),
                  produced: q.produced.load(ordering: .relaxed),
                  dropped: q.dropped.load(ordering: .relaxed),
                  rejected: q.rejected.load(ordering: .relaxed))
    }
}

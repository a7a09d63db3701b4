import Synchronization

/// Counters of one task (a source's subscription or a periodic task). The dispatch thread
/// writes them (`stalls`: the supervisor thread); any thread may read them at any time (relaxed atomics: each value is exact,
/// values may be from slightly different instants).
public final class TaskStatistics: Sendable {
    let releases = Atomic<UInt64>(0)
    let completions = Atomic<UInt64>(0)
    let startLate = Atomic<UInt64>(0)
    let finishLate = Atomic<UInt64>(0)

    /// Jobs that completed by their deadline (any thread; no allocation): a critical task's miss
    /// streak is broken when this grows.
    public var onTimeCompletions: UInt64 {
        completions.load(ordering: .relaxed) &- finishLate.load(ordering: .relaxed)
    }
    let droppedLate = Atomic<UInt64>(0)
    let skipped = Atomic<UInt64>(0)
    let faults = Atomic<UInt64>(0)
    let stalls = Atomic<UInt64>(0)
    let worstLateness = Atomic<Int64>(.min)
    /// The same since the accounting window's owner last took it (`exchange(.min)` there). A job
    /// finishing while the owner takes it lands in one window or the other, never in neither
    /// unless the older window already holds a worse one.
    let windowWorstLateness = Atomic<Int64>(.min)
    /// Release → handler start.
    public let startLatency = LatencyRecorder()
    /// Release → handler end.
    public let responseTime = LatencyRecorder()

    @inline(__always) func bump(_ counter: borrowing Atomic<UInt64>) { counter.add(1, ordering: .relaxed) }

    @inline(__always) func noteLateness(_ lateness: Int64) {
        if lateness > worstLateness.load(ordering: .relaxed) { worstLateness.store(lateness, ordering: .relaxed) }
        if lateness > windowWorstLateness.load(ordering: .relaxed) { windowWorstLateness.store(lateness, ordering: .relaxed) }
    }
}

/// A point-in-time copy of a task's accounting.
public struct TaskSnapshot: Sendable, Equatable {
    public enum Kind: String, Sendable { case event, periodic }
    public var id: TaskID
    public var name: String
    public var kind: Kind
    public var priority: PriorityClass
    public var critical: Bool
    public var releases: UInt64
    public var completions: UInt64
    public var startLateMisses: UInt64
    public var finishLateMisses: UInt64
    public var droppedLate: UInt64
    public var skippedReleases: UInt64
    public var deadlineFaults: UInt64
    /// Runs of the handler the supervisor reported as stalled (over their budget).
    public var stalls: UInt64
    /// Largest (finish − deadline) seen, ns; negative means every job finished early. nil: no job yet.
    public var worstLatenessNs: Int64?
    public var startLatency: LatencySummary
    public var responseTime: LatencySummary
    /// Latency samples not recorded because a reader was swapping a histogram at that instant
    /// (the dispatch thread does not wait for it); counted, never silent.
    public var latencySamplesSkipped: UInt64 = 0
    /// For event tasks: the source's queue.
    public var queue: QueueSnapshot?

    /// Every kind of miss: finish-late (which includes start-late jobs that ran) and dropped-late.
    public var misses: UInt64 { finishLateMisses + droppedLate }
}

public struct QueueSnapshot: Sendable, Equatable {
    public var capacity: Int
    public var overflow: OverflowPolicy
    public var depth: Int
    public var highWater: Int
    public var produced: UInt64
    public var dropped: UInt64
    public var rejected: UInt64
}

public struct SchedulerSnapshot: Sendable, Equatable {
    public var at: Instant
    public var tasks: [TaskSnapshot]
    /// Miss records lost because telemetry did not drain the miss log in time.
    public var missLogOverwritten: UInt64
    /// Stalls of the dispatch thread reported by the supervisor (all tasks).
    public var stalls: UInt64

    public func task(named name: String) -> TaskSnapshot? { tasks.first { $0.name == name } }
}

/// What an ingress queue does when a post arrives and it is full.
public enum OverflowPolicy: String, Sendable, CaseIterable {
    /// The oldest queued event is dropped (counted) to make room: for streams where fresh data wins.
    case dropOldest = "drop-oldest"
    /// A queued event with the same key is replaced in place (counted as dropped); a new key
    /// arriving at a full queue drops the oldest. For state-like inputs: axes, setpoints, readings.
    case keepLatestPerKey = "keep-latest-per-key"
    /// The post is refused and the producer is told (`PostResult.rejected`); nothing queued is lost.
    case reject
}

/// What happens to an event that is already past its deadline when its turn comes.
public enum LatePolicy: String, Sendable {
    /// Run the handler anyway; the miss is counted (start-late and finish-late).
    case runAndCount = "run"
    /// Do not run it; count it as dropped-late (a miss).
    case dropAndCount = "drop"
}

/// Marks a task as critical: `consecutiveMisses` misses in a row raise one deadline fault.
public struct CriticalPolicy: Sendable, Equatable {
    public var consecutiveMisses: Int
    public init(consecutiveMisses: Int) {
        precondition(consecutiveMisses >= 1, "consecutiveMisses must be at least 1")
        self.consecutiveMisses = consecutiveMisses
    }
}

/// How a source's events are scheduled: one subscription per source. (A producer that feeds
/// several consumers posts to several sources; that keeps each queue's bound and policy exact.)
public struct Subscription: Sendable {
    public var priority: PriorityClass
    public var relativeDeadline: Duration
    public var whenLate: LatePolicy
    public var critical: CriticalPolicy?
    /// How long one run of the handler may take before the supervisor reports a stall; nil: the
    /// scheduler-wide default (`SupervisorOptions`).
    public var budget: Duration?

    public init(priority: PriorityClass, relativeDeadline: Duration, whenLate: LatePolicy = .runAndCount,
                critical: CriticalPolicy? = nil, budget: Duration? = nil) {
        precondition(relativeDeadline >= .zero, "a relative deadline cannot be negative")
        precondition(budget.map { $0 > .zero } ?? true, "a handler budget must be positive")
        self.priority = priority
        self.relativeDeadline = relativeDeadline
        self.whenLate = whenLate
        self.critical = critical
        self.budget = budget
    }
}

/// The bound and overflow policy of a source's ingress queue.
public struct QueueSpec: Sendable {
    public var capacity: Int
    public var overflow: OverflowPolicy
    public init(capacity: Int, overflow: OverflowPolicy) {
        precondition(capacity >= 1, "a queue needs room for at least one event")
        self.capacity = capacity
        self.overflow = overflow
    }
}

/// A periodic task: released at `phase + k·period` (k = 0, 1, …) on the scheduler's clock,
/// computed by multiplication so that no error accumulates.
public struct PeriodicSpec: Sendable {
    public var period: Duration
    public var phase: Duration
    public var relativeDeadline: Duration
    public var priority: PriorityClass
    public var whenLate: LatePolicy
    public var critical: CriticalPolicy?
    /// How long one run of the handler may take before the supervisor reports a stall; nil: the
    /// scheduler-wide default (`SupervisorOptions`).
    public var budget: Duration?

    public init(period: Duration, phase: Duration = .zero, relativeDeadline: Duration? = nil,
                priority: PriorityClass, whenLate: LatePolicy = .runAndCount, critical: CriticalPolicy? = nil,
                budget: Duration? = nil) {
        precondition(period > .zero, "a period must be positive")
        precondition(budget.map { $0 > .zero } ?? true, "a handler budget must be positive")
        self.budget = budget
        self.period = period
        self.phase = phase
        self.relativeDeadline = relativeDeadline ?? period
        self.priority = priority
        self.whenLate = whenLate
        self.critical = critical
    }
}

/// What a producer learns from a post.
public enum PostResult: Sendable, Equatable {
    case accepted
    /// Accepted; an older queued event with the same key was replaced (and counted as dropped).
    case coalesced
    /// Accepted; the oldest queued event was dropped to make room.
    case droppedOldest
    /// Refused: the queue is full and its policy is `.reject`.
    case rejected
    /// Refused: the scheduler has stopped.
    case stopped

    public var wasAccepted: Bool {
        switch self {
        case .accepted, .coalesced, .droppedOldest: true
        case .rejected, .stopped: false
        }
    }
}

import RTScheduler

/// The e-stop latch as a value-type state machine: its methods say what happened; the guard
/// performs the consequences. Once latched, only an explicit `reset` releases it, and a reset
/// while the stop ramp is still running is refused.
public struct EStopLatch: Sendable, Equatable {
    public enum State: Sendable, Equatable {
        case running
        /// Ramping toward safe values (categories 1 and 2).
        case stopping(StopCategory, FaultKind, since: Instant)
        /// Safe values reached (category 0 immediately).
        case stopped(StopCategory, FaultKind, since: Instant)
    }

    public private(set) var state: State = .running
    /// When the latch was last released; commands issued before it never resume by themselves.
    public private(set) var lastReset: Instant?

    public init() {}

    public var isLatched: Bool { state != .running }

    public var category: StopCategory? {
        switch state {
        case .running: nil
        case .stopping(let c, _, _), .stopped(let c, _, _): c
        }
    }

    public var cause: FaultKind? {
        switch state {
        case .running: nil
        case .stopping(_, let f, _), .stopped(_, let f, _): f
        }
    }

    public enum TriggerOutcome: Sendable, Equatable {
        case latched
        /// Already latched; a more severe (lower) category replaced the running one.
        case escalated
        case alreadyLatched
    }

    public mutating func trigger(_ category: StopCategory, cause: FaultKind, at instant: Instant) -> TriggerOutcome {
        switch state {
        case .running:
            state = category == .zero ? .stopped(category, cause, since: instant) : .stopping(category, cause, since: instant)
            return .latched
        case .stopping(let current, _, _), .stopped(let current, _, _):
            guard category < current else { return .alreadyLatched }
            state = category == .zero ? .stopped(category, cause, since: instant) : .stopping(category, cause, since: instant)
            return .escalated
        }
    }

    /// The ramp reached the safe values.
    public mutating func rampFinished(at instant: Instant) {
        if case .stopping(let c, let f, _) = state { state = .stopped(c, f, since: instant) }
    }

    public enum ResetOutcome: Sendable, Equatable { case released, notLatched, stillStopping }

    public mutating func reset(at instant: Instant) -> ResetOutcome {
        switch state {
        case .running: return .notLatched
        case .stopping: return .stillStopping
        case .stopped:
            state = .running
            lastReset = instant
            return .released
        }
    }
}

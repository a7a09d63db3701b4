import Foundation

// What the runtime hands the memory (one value per event) and what it reads back. Every text in
// them is data — a user's goal, a model's answer, a sensor's words — stored as given (clipped) and
// escaped wherever it is shown.

/// A new goal: the start of an episode. `goalID` is the runtime's goal number, unique within one run
/// of robotd; the memory keys the episode by (this run, goalID), so numbers that restart after a
/// restart do not collide.
public struct GoalRecord: Sendable, Equatable {
    public var goalID: UInt64
    /// The goal as given (at most `MemoryLimits.goalTextBytes` are kept).
    public var text: String
    /// Who gave it (an MQTT user name, `cli`…); nil when nobody is known.
    public var user: String?
    /// Where it came from: `mqtt`, `cli`, `config`, `sim`, `mcp`…
    public var source: String
    public var time: Date

    public init(goalID: UInt64, text: String, user: String? = nil, source: String, time: Date = Date()) {
        self.goalID = goalID
        self.text = text
        self.user = user
        self.source = source
        self.time = time
    }
}

/// One answer to a goal and its verdict: an accepted plan, or a rejected one with its reasons.
public struct PlanRecord: Sendable, Equatable {
    public enum Verdict: String, Sendable, Codable, CaseIterable {
        case accepted, rejected
    }

    public var goalID: UInt64
    /// The back end that answered (`builtin`, a route's name).
    public var backend: String
    /// How long the back end took.
    public var latency: Duration
    public var verdict: Verdict
    /// Why it was rejected (the validator's reasons, one sentence each); empty when accepted.
    /// For people (`robotd memory`): the prompt's summary never shows them.
    public var reasons: [String]
    /// The validator's issue codes (`unknown_ability`…), what the prompt's summary shows instead.
    public var codes: [String]
    /// The plan as JSON text (the validated plan, or the answer as given when it was rejected);
    /// at most `MemoryLimits.stepsBytes` are kept.
    public var steps: String?
    public var time: Date

    public init(goalID: UInt64, backend: String, latency: Duration, verdict: Verdict, reasons: [String] = [],
                codes: [String] = [], steps: String? = nil, time: Date = Date()) {
        self.goalID = goalID
        self.backend = backend
        self.latency = latency
        self.verdict = verdict
        self.reasons = reasons
        self.codes = codes
        self.steps = steps
        self.time = time
    }
}

/// How an episode ended.
public struct OutcomeRecord: Sendable, Equatable {
    public enum Status: String, Sendable, Codable, CaseIterable {
        case completed, failed, cancelled
    }

    public var goalID: UInt64
    public var status: Status
    /// Why it failed or was cancelled (`no plan: every back end failed`, `e-stop`, `a new goal`…).
    public var cause: String?
    public var time: Date

    public init(goalID: UInt64, status: Status, cause: String? = nil, time: Date = Date()) {
        self.goalID = goalID
        self.status = status
        self.cause = cause
        self.time = time
    }
}

/// A safety intervention worth remembering across goals: a latch and its cause, a refused reset and
/// its reasons, a reset. Compact: a kind and one line of detail.
public struct InterventionRecord: Sendable, Equatable {
    /// `latched`, `reset-refused`, `reset`… (the guard's audit kinds fit).
    public var kind: String
    public var detail: String
    /// The goal being worked on at the time, if any.
    public var goalID: UInt64?
    public var time: Date

    public init(kind: String, detail: String, goalID: UInt64? = nil, time: Date = Date()) {
        self.kind = kind
        self.detail = detail
        self.goalID = goalID
        self.time = time
    }
}

/// How much of each text is kept: the database and the summary stay bounded whatever arrives.
public enum MemoryLimits {
    public static let goalTextBytes = 4096
    public static let userBytes = 256
    public static let sourceBytes = 64
    public static let backendBytes = 128
    public static let reasonBytes = 1024
    public static let reasons = 20
    public static let codeBytes = 64
    public static let stepsBytes = 16_384
    public static let causeBytes = 1024
    public static let kindBytes = 64
    public static let detailBytes = 1024
}

// MARK: Read back

/// One goal with every answer it got and how it ended, as stored.
public struct Episode: Sendable, Equatable {
    /// The episode's own number (increasing, never reused).
    public var id: Int64
    /// The run of robotd that recorded it (one per start of a writer).
    public var run: Int64
    public var goalID: UInt64
    public var text: String
    public var user: String?
    public var source: String
    public var time: Date
    /// In the order they were recorded.
    public var plans: [StoredPlan]
    /// The last outcome recorded; nil while running, or when robotd stopped before one.
    public var outcome: StoredOutcome?

    public init(id: Int64, run: Int64, goalID: UInt64, text: String, user: String?, source: String, time: Date,
                plans: [StoredPlan] = [], outcome: StoredOutcome? = nil) {
        self.id = id
        self.run = run
        self.goalID = goalID
        self.text = text
        self.user = user
        self.source = source
        self.time = time
        self.plans = plans
        self.outcome = outcome
    }
}

public struct StoredPlan: Sendable, Equatable {
    public var backend: String
    public var latencyMs: Double
    public var verdict: PlanRecord.Verdict
    public var reasons: [String]
    /// The validator's issue codes (empty in rows from before robotd kept them).
    public var codes: [String]
    public var steps: String?
    public var time: Date

    public init(backend: String, latencyMs: Double, verdict: PlanRecord.Verdict, reasons: [String], codes: [String] = [],
                steps: String?, time: Date) {
        self.backend = backend
        self.latencyMs = latencyMs
        self.verdict = verdict
        self.reasons = reasons
        self.codes = codes
        self.steps = steps
        self.time = time
    }
}

public struct StoredOutcome: Sendable, Equatable {
    public var status: OutcomeRecord.Status
    public var cause: String?
    public var time: Date

    public init(status: OutcomeRecord.Status, cause: String?, time: Date) {
        self.status = status
        self.cause = cause
        self.time = time
    }
}

/// A rejected answer with the goal it answered (the summary's "recent rejections": its back end,
/// codes and count of reasons; never the goal's or the reasons' words).
public struct Rejection: Sendable, Equatable {
    public var goal: String
    public var backend: String
    public var reasons: [String]
    /// The validator's issue codes; empty for a row written before robotd kept them.
    public var codes: [String]
    public var time: Date

    public init(goal: String, backend: String, reasons: [String], codes: [String] = [], time: Date) {
        self.goal = goal
        self.backend = backend
        self.reasons = reasons
        self.codes = codes
        self.time = time
    }
}

public struct Intervention: Sendable, Equatable {
    public var id: Int64
    public var run: Int64
    public var kind: String
    public var detail: String
    public var goalID: UInt64?
    public var time: Date

    public init(id: Int64, run: Int64, kind: String, detail: String, goalID: UInt64?, time: Date) {
        self.id = id
        self.run = run
        self.kind = kind
        self.detail = detail
        self.goalID = goalID
        self.time = time
    }
}

import Foundation
import Planner
import Synchronization

/// One message of the `plan` topic (docs/mqtt.md, schema docs/schemas/plan.schema.json): a goal
/// taken or refused, a back end's answer and its verdict, the accepted plan, a planning failure,
/// the executor's progress, or the planner's health. Keys become snake_case (`TelemetryJSON`); an
/// absent key means "does not apply" or "unknown".
public struct PlanTopicPayload: Codable, Sendable, Equatable {
    public enum Kind: String, Codable, Sendable {
        case goal, verdict, plan, planningFailed = "planning_failed", replan, progress, health
    }

    public struct Issue: Codable, Sendable, Equatable {
        public var code: String
        public var path: String
        public var message: String
    }

    public struct Step: Codable, Sendable, Equatable {
        public var ability: String
        public var arguments: [String: Planner.JSONValue]
    }

    public struct Attempt: Codable, Sendable, Equatable {
        public var backend: String
        public var round: Int
        /// accepted, rejected, failed, skipped, cancelled.
        public var outcome: String
        public var detail: String?
        public var latencyUs: Int64
    }

    public struct Backend: Codable, Sendable, Equatable {
        public var name: String
        /// closed, open, half_open.
        public var breaker: String
        public var consecutiveFailures: Int
        public var breakerOpened: Int
        public var requests: Int
        public var answers: Int
        public var accepted: Int
        public var rejected: Int
        public var failures: Int
        // The router's further figures: always sent; optional so that a monitor still reads a robot
        // from before them.
        /// Failures by kind (`timeout`, `http_status`, `transport`, …).
        public var failuresByKind: [String: Int]?
        /// Requests their callers cancelled (a new goal, a stop): neither answers nor failures.
        public var cancelled: Int?
        /// Times caller-cancelled requests ran a whole deadline between them without an answer
        /// (each counted against the breaker as one failure; not in `failures`).
        public var unanswered: Int?
        /// Caller-cancelled requests' time since the last answer or failure, adding up toward the next `unanswered`.
        public var unansweredTimeUs: Int64?
        /// Failures that opened the breaker at once (a redirect, a configuration failure).
        public var configurationFailures: Int?
        public var skipped: Int
        /// Skips by reason (`goal_kind`, `breaker_open`, `not_enough_time`, `teardowns_pending`).
        public var skippedByReason: [String: Int]?
        /// Its requests whose connections are not torn down yet, now.
        public var pendingTeardowns: Int?
        /// Times its teardowns outlasted the bound a request slot waits for them.
        public var teardownsOverdue: Int?
        public var lastLatencyUs: Int64?
        public var latencyP50Us: Int64?
        public var latencyP95Us: Int64?
        public var lastError: String?
    }

    /// This topic's message number (from 1): a jump is a lost message.
    public var seq: UInt64 = 0
    public var tUnixS: Double = 0
    /// The run that published it, as `state` names it (`RunIdentity`): goal numbers restart with
    /// every run, so an answer matched by goal number is this run's only if these match. Every
    /// message the journal takes carries them; nil in a message from a robotd before them.
    public var bootId: String?
    public var pid: Int?
    public var runId: String?
    public var kind: Kind
    public var goalId: UInt64?
    /// goal: the goal as given (data).
    public var text: String?
    /// goal: `mqtt`, `config`, `command`.
    public var source: String?
    public var user: String?
    /// goal over MQTT: the request's `id` (`robotd goal`, `robotd mcp`), so that its sender finds its answer.
    public var requestId: String?
    /// goal: `accepted`, `refused`, `ignored`.
    public var outcome: String?
    /// Why: a goal refused or ignored, a planning failure, a plan that ended other than completed.
    public var reason: String?
    /// verdict, plan: the back end that answered; its round (0: first question).
    public var backend: String?
    public var round: Int?
    public var latencyUs: Int64?
    /// verdict: the validator's.
    public var accepted: Bool?
    public var issues: [Issue]?
    /// plan: the accepted steps.
    public var steps: [Step]?
    /// planning_failed: every attempt.
    public var attempts: [Attempt]?
    /// progress: `started`, `step_started`, `step_completed`, `completed`, `failed`, `cancelled`, `refused`.
    public var event: String?
    public var step: Int?
    public var stepCount: Int?
    public var ability: String?
    /// progress: m along the route, or °C to the setpoint, left when it was recorded.
    public var remaining: Double?
    /// health: each back end in the router's order.
    public var backends: [Backend]?
    public var requestsInFlight: Int?
    public var goalsRefused: Int?
    /// health: goals over MQTT the planner never looked at (pushed out of its full queue by newer ones).
    public var goalsDropped: UInt64?

    public init(kind: Kind) { self.kind = kind }

    /// The run that published it; nil: a message that names none.
    public var run: RunIdentity? {
        guard let bootId, let pid else { return nil }
        return RunIdentity(bootId: bootId, pid: pid, runId: runId ?? "")
    }

    /// One line for a person (`robotd sim`'s output, `robotd goal --follow`, the log), safe to
    /// print: what a goal, a user name, a back end's error or a model's answer says is escaped
    /// (`TerminalText.printable`), so it cannot draw on the terminal, move the cursor or forge a
    /// line of its own.
    public var line: String { TerminalText.printable(unescapedLine) }

    /// `line` before escaping: never to be printed as it is.
    private var unescapedLine: String {
        let goal = goalId.map { "goal \($0)" } ?? "goal"
        switch kind {
        case .goal:
            let who = user.map { " from \($0)" } ?? (source.map { " (\($0))" } ?? "")
            let said = text.map { " \"\($0)\"" } ?? ""
            return outcome == "accepted" ? "\(goal)\(who):\(said)" : "goal\(who)\(said) \(outcome ?? "refused"): \(reason ?? "")"
        case .verdict:
            let by = "\(backend ?? "?")" + ((round ?? 0) > 0 ? " (round \(round ?? 0))" : "")
            if accepted == true { return "\(goal): \(by)'s plan accepted" + (latencyUs.map { String(format: " (%.0f ms)", Double($0) / 1000) } ?? "") }
            return "\(goal): \(by)'s plan REJECTED: " + (issues ?? []).map { $0.path.isEmpty ? $0.message : "\($0.path): \($0.message)" }.joined(separator: "; ")
        case .plan:
            let list = (steps ?? []).enumerated().map { "\($0.offset + 1). \(Self.words($0.element))" }.joined(separator: "  ")
            return "\(goal): plan by \(backend ?? "?"): \(list)"
        case .planningFailed:
            return "\(goal): no plan: \(reason ?? "")"
        case .replan:
            return "\(goal): \(reason ?? "planning again")"
        case .progress:
            let at = step.map { "step \($0 + 1)/\(stepCount ?? 0)" } ?? ""
            let what = ability.map { " \($0)" } ?? ""
            let left = remaining.map { String(format: " (%.2f left)", $0) } ?? ""
            switch event {
            case "step_started": return "\(goal): \(at)\(what) started"
            case "step_completed": return "\(goal): \(at)\(what) done"
            case "completed": return "\(goal): plan completed"
            case "started": return "\(goal): executing \(stepCount ?? 0) step(s)"
            default: return "\(goal): plan \(event ?? "?") at \(at)\(what)\(left): \(reason ?? "")"
            }
        case .health:
            return "planner: " + (backends ?? []).map { "\($0.name) \($0.breaker)" }.joined(separator: ", ")
        }
    }

    static func words(_ step: Step) -> String {
        let arguments = step.arguments.keys.sorted().map { key -> String in
            let value = step.arguments[key] ?? .null
            return "\(key) \(Self.words(value))"
        }
        return arguments.isEmpty ? step.ability : "\(step.ability)(\(arguments.joined(separator: ", ")))"
    }

    static func words(_ value: Planner.JSONValue) -> String {
        switch value {
        case .number(let n): String(format: "%g", n)
        case .string(let s): s
        case .bool(let b): b ? "true" : "false"
        case .null: "null"
        case .array(let items): "[" + items.map(words).joined(separator: " ") + "]"
        case .object(let fields):
            if case .number(let x)? = fields["x"], case .number(let y)? = fields["y"], fields.count == 2 {
                String(format: "(%g, %g)", x, y)
            } else {
                "{" + fields.keys.sorted().map { "\($0): \(words(fields[$0] ?? .null))" }.joined(separator: ", ") + "}"
            }
        }
    }
}

/// What the `plan` topic publishes, in order: the planner service appends, the telemetry monitor
/// and `robotd sim` read with their own cursor (the sequence number). Bounded: the oldest go when
/// full, and a reader sees the gap. Never touched by the dispatch thread. Each message is stamped
/// with its number, its time and the run (`boot_id`, `pid`: the telemetry monitor's `state` takes
/// the same from here).
public final class PlanJournal: Sendable {
    public static let capacity = 256
    private struct State {
        var entries: [PlanTopicPayload] = []
        var next: UInt64 = 1
    }

    private let state = Mutex(State())
    /// The run whose messages these are.
    public let run: RunIdentity

    public init(run: RunIdentity = .current()) { self.run = run }

    func append(_ payload: PlanTopicPayload) {
        var p = payload
        p.tUnixS = Date().timeIntervalSince1970
        (p.bootId, p.pid, p.runId) = (run.bootId, run.pid, run.runId)
        state.withLock { s in
            p.seq = s.next
            s.next += 1
            s.entries.append(p)
            if s.entries.count > Self.capacity { s.entries.removeFirst(s.entries.count - Self.capacity) }
        }
    }

    /// Messages after sequence number `seq`, oldest first.
    public func messages(after seq: UInt64) -> [PlanTopicPayload] {
        state.withLock { s in s.entries.filter { $0.seq > seq } }
    }

    /// The sequence number of the last message appended (0: none yet).
    public var lastSequence: UInt64 { state.withLock { $0.next - 1 } }

    /// Every message kept.
    public var all: [PlanTopicPayload] { messages(after: 0) }
}

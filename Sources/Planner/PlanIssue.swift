/// Why a plan is refused: one machine-readable code per problem, where it is, and a sentence a
/// model can act on.
public struct PlanIssue: Sendable, Equatable, Codable, Error, CustomStringConvertible {
    public enum Code: String, Sendable, Codable, CaseIterable {
        /// Not JSON at all (or larger than `PlanValidator.maxPlanBytes`).
        case invalidJSON = "invalid_json"
        /// JSON, but not `{"steps": [...]}` with step objects.
        case notAPlan = "not_a_plan"
        /// A key the schema does not have.
        case unexpectedField = "unexpected_field"
        case noSteps = "no_steps"
        case tooManySteps = "too_many_steps"
        case unknownAbility = "unknown_ability"
        case unknownArgument = "unknown_argument"
        case missingArgument = "missing_argument"
        /// A value of the wrong JSON type (a string where a number belongs).
        case wrongType = "wrong_type"
        /// NaN, an infinity, a number beyond a Double (`1e999`), or a string meaning one.
        case notFinite = "not_finite"
        /// Beyond the ability's own bounds, the action's, a wheel limit or a thermostat limit.
        case outOfRange = "out_of_range"
        /// A point outside the workspace, or closer to its edge than the clearance.
        case outsideWorkspace = "outside_workspace"
        /// A speed above the planner envelope of the wheels.
        case speedAboveEnvelope = "speed_above_envelope"
        case tooManyPoints = "too_many_points"
        case preconditionFailed = "precondition_failed"
        /// The world moved on since the request: re-plan from the current state.
        case staleMode = "stale_mode"
        case staleStopCauses = "stale_stop_causes"
        case staleGoal = "stale_goal"
        case stalePose = "stale_pose"
        case staleAge = "stale_age"

        /// A stale plan is not the model's mistake: it is asked again from the current state,
        /// not corrected.
        public var isStale: Bool {
            switch self {
            case .staleMode, .staleStopCauses, .staleGoal, .stalePose, .staleAge: true
            default: false
            }
        }
    }

    public var code: Code
    /// Where in the plan (`steps[1].arguments.x`); empty for the whole plan.
    public var path: String
    public var message: String

    public init(_ code: Code, path: String = "", _ message: String) {
        self.code = code
        self.path = path
        self.message = message
    }

    public var description: String { path.isEmpty ? message : "\(path): \(message)" }
}

/// A refused plan: every problem found (up to `PlanValidator.maxIssues`), and the text to send
/// back to the model that wrote it.
public struct PlanRejection: Sendable, Equatable, Codable, Error {
    public var issues: [PlanIssue]
    /// Problems found beyond those listed.
    public var omitted: Int

    public init(issues: [PlanIssue], omitted: Int = 0) {
        self.issues = issues
        self.omitted = omitted
    }

    public var codes: Set<PlanIssue.Code> { Set(issues.map(\.code)) }

    /// The world moved on: ask again from the current state instead of asking for a correction.
    public var isStale: Bool { issues.contains { $0.code.isStale } }

    /// What the model is told: each problem on its line, then what to answer. The text names
    /// abilities, arguments and numbers only; it repeats nothing of the goal's text.
    public var feedback: String {
        var lines = ["The plan was rejected:"]
        lines += issues.map { "- \($0)" }
        if omitted > 0 { lines.append("- and \(omitted) more") }
        lines.append(isStale
            ? "The robot's state changed since the request: plan again from the current state."
            : "Answer with a corrected plan: one JSON object {\"steps\": [...]} that follows the schema.")
        return lines.joined(separator: "\n")
    }
}

/// How many rejected answers go back to the same back end with their reasons
/// (`planner.rejection_retries`) before its answer counts as failed.
public struct RejectionBudget: Sendable, Equatable {
    public let retries: Int
    public private(set) var rejections = 0

    public init(retries: Int) { self.retries = max(0, retries) }

    public enum Decision: Sendable, Equatable {
        /// Send this text back and ask again.
        case retry(feedback: String)
        /// The retries are spent (or the plan is stale): give up on this answer.
        case giveUp
    }

    /// Counts a rejection and says what to do next. A stale plan is never corrected: the state it
    /// was made from is gone.
    public mutating func record(_ rejection: PlanRejection) -> Decision {
        rejections += 1
        guard !rejection.isStale, rejections <= retries else { return .giveUp }
        return .retry(feedback: rejection.feedback)
    }
}

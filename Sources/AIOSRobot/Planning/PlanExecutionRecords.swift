import RTScheduler
import Telemetry

/// What the plan executor did, one record per change, from the dispatch thread to whoever reads
/// (the planner service, telemetry) through a lock-free ring: plain values, no reference.
public struct PlanExecutionEvent: Sendable, BitwiseCopyable, Equatable {
    public enum Kind: UInt8, Sendable, BitwiseCopyable {
        /// A plan was installed (step 0 follows).
        case started
        case stepStarted
        case stepCompleted
        case completed
        case failed
        case cancelled
        /// A plan arrived and was not executed (`reason` says why).
        case refused
        /// No plan for the goal (the planner service gave up).
        case planningFailed

        public var word: String {
            switch self {
            case .started: "started"
            case .stepStarted: "step_started"
            case .stepCompleted: "step_completed"
            case .completed: "completed"
            case .failed: "failed"
            case .cancelled: "cancelled"
            case .refused: "refused"
            case .planningFailed: "planning_failed"
            }
        }
    }

    public var kind: Kind
    public var goalID: UInt64
    /// 0-based; the step count when the plan ended.
    public var step: Int32
    public var stepCount: Int32
    /// Index in the configuration's `abilities` (-1: none).
    public var ability: Int16
    public var reason: PlanEndReason
    /// The scheduler's clock (ns).
    public var at: Int64
    /// What was left of the step (m or °C; NaN: unknown).
    public var remaining: Double
}

/// Why a plan ended other than completed, or was refused.
public enum PlanEndReason: UInt8, Sendable, BitwiseCopyable, CaseIterable {
    case none
    /// The step ran past its ability's `timeout_s`.
    case timeout
    /// The step got less than `min_progress` closer within `time_s`.
    case noProgress
    /// A stop latched (e-stop, a stop cause): the plan is cancelled, and nothing resumes after the reset.
    case latched
    /// Another goal replaced it.
    case newGoal
    /// It arrived for a goal that is no longer the robot's.
    case staleGoal
    /// Its policy is not one the runtime runs (a configuration changed under the plan).
    case noPolicy
    /// A step's ability's precondition did not hold when the step was to start.
    case preconditionFailed

    public var word: String {
        switch self {
        case .none: "none"
        case .timeout: "timeout"
        case .noProgress: "no_progress"
        case .latched: "latched"
        case .newGoal: "new_goal"
        case .staleGoal: "stale_goal"
        case .noPolicy: "no_policy"
        case .preconditionFailed: "precondition_failed"
        }
    }
}

/// The executor's state as the dispatch thread last published it (lock-free for readers).
public struct PlanExecutionStatus: Sendable, BitwiseCopyable, Equatable {
    public enum State: UInt8, Sendable, BitwiseCopyable {
        case idle, running, completed, failed, cancelled

        public var word: String {
            switch self {
            case .idle: "idle"
            case .running: "running"
            case .completed: "completed"
            case .failed: "failed"
            case .cancelled: "cancelled"
            }
        }
    }

    /// The robot's current goal as the dispatch thread knows it (0: none yet).
    public var goalID: UInt64 = 0
    /// The goal of the plan running or last run (0: none yet).
    public var planGoalID: UInt64 = 0
    public var state = State.idle
    public var step: Int32 = 0
    public var stepCount: Int32 = 0
    public var ability: Int16 = -1
    public var reason = PlanEndReason.none
    /// What is left of the running step (m or °C; NaN: unknown).
    public var remaining = Double.nan
    /// The thermostat setpoint plans set last (°C; NaN: the configuration's).
    public var setpoint = Double.nan
    /// Plans executed to their end, failed, cancelled; plans refused on arrival.
    public var completed: UInt64 = 0
    public var failed: UInt64 = 0
    public var cancelled: UInt64 = 0
    public var refused: UInt64 = 0

    public init() {}
}

extension PlanExecutionStatus {
    /// The running (or last) step's ability by name (`abilities`: the configuration's, in order).
    public func abilityName(in abilities: [String]) -> String? {
        abilities.indices.contains(Int(ability)) ? abilities[Int(ability)] : nil
    }

    /// In `state`'s words (docs/mqtt.md): steps from 1; `remaining` rounded to 0.01 (m or °C), so
    /// that a moving robot does not make every reading a change.
    public func payload(abilities: [String]) -> StatePayload.PlanState {
        let started = planGoalID != 0
        return StatePayload.PlanState(
            goalId: goalID, planGoalId: planGoalID, state: state.word,
            step: started ? Int(step) + 1 : nil, stepCount: started ? Int(stepCount) : nil, ability: abilityName(in: abilities),
            reason: reason == .none ? nil : reason.word,
            remaining: remaining.isFinite ? (remaining * 100).rounded() / 100 : nil)
    }
}

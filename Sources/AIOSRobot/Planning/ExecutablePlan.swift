import RTScheduler

/// An accepted plan as the dispatch thread executes it: every step resolved to the policy that
/// executes it (its slot among the runtime's proposing policies), its limits in the runtime's
/// units. Built by the planner service off the dispatch thread; the dispatch thread only reads it.
public final class ExecutablePlan: Sendable {
    public let goalID: UInt64
    public let steps: [ExecutableStep]
    /// The guard's latch epoch when its goal was taken: in any other epoch (a stop latched since,
    /// even one already reset) the executor refuses or cancels it.
    public let latchEpoch: UInt64

    public init(goalID: UInt64, steps: [ExecutableStep], latchEpoch: UInt64) {
        self.goalID = goalID
        self.steps = steps
        self.latchEpoch = latchEpoch
    }
}

public struct ExecutableStep: Sendable {
    public enum Action: Sendable {
        /// goto (one point) and patrol: a route for a `waypoints` policy.
        case route(points: [(x: Double, y: Double)], speed: Double?)
        /// set_temperature: done when the temperature is within the thermostat's band.
        case setpoint(Double)
        /// hold: the setpoint for `seconds`, then the one before it again.
        case hold(temperature: Double, seconds: Double)
        case wait(seconds: Double)
        case stop
    }

    public var action: Action
    /// The executing policy's slot (`Control.sources`); nil for `wait` and `stop`.
    public var slot: Int?
    /// Index of its ability in the configuration's `abilities` (-1: unknown).
    public var ability: Int
    public var timeout: Duration?
    /// Less than `minProgress` (m or °C) closer within `window` is no progress.
    public var minProgress: Double?
    public var window: Duration?
    /// Tells this step's route from any other (the policy starts afresh on a new one).
    public var serial: UInt64
    /// Its ability's preconditions, checked again when the step starts (the validator checked
    /// them against the world state the plan was accepted in; a later step starts later).
    public var preconditions: StepPreconditions

    public init(action: Action, slot: Int?, ability: Int, timeout: Duration?, minProgress: Double?, window: Duration?, serial: UInt64,
                preconditions: StepPreconditions = []) {
        self.action = action
        self.slot = slot
        self.ability = ability
        self.timeout = timeout
        self.minProgress = minProgress
        self.window = window
        self.serial = serial
        self.preconditions = preconditions
    }
}

/// An ability's preconditions as bits (`AbilityPrecondition`): what the dispatch thread checks.
public struct StepPreconditions: OptionSet, Sendable, BitwiseCopyable {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }
    public static let notLatched = StepPreconditions(rawValue: 1)
    public static let poseKnown = StepPreconditions(rawValue: 2)
    public static let insideWorkspace = StepPreconditions(rawValue: 4)

    /// Whether they hold in `conditions`.
    func hold(in conditions: PlanConditions) -> Bool {
        if contains(.notLatched) && !conditions.clear { return false }
        if (contains(.poseKnown) || contains(.insideWorkspace)) && !conditions.poseKnown { return false }
        if contains(.insideWorkspace) && !conditions.insideWorkspace { return false }
        return true
    }
}

/// What a step's preconditions are judged by, as the dispatch thread sees it when the step starts.
public struct PlanConditions: Sendable, BitwiseCopyable {
    /// No stop latched and no stop cause present.
    public var clear: Bool
    public var poseKnown: Bool
    /// The pose inside the workspace (or no workspace).
    public var insideWorkspace: Bool

    public init(clear: Bool = true, poseKnown: Bool = true, insideWorkspace: Bool = true) {
        self.clear = clear
        self.poseKnown = poseKnown
        self.insideWorkspace = insideWorkspace
    }
}

/// What the planner service posts to the dispatch thread (the `planner` source's payload).
final class PlannerMessage: Sendable {
    enum Kind: Sendable {
        /// A new goal: the plan of any other goal is cancelled at once.
        case goal(UInt64)
        /// `planReady`: an accepted plan for its goal.
        case ready(ExecutablePlan)
        /// `planFailed`: no plan for this goal (every back end failed, was skipped or had its plans rejected).
        case failed(UInt64)
        /// A goal that is exactly `stop`: no model, no plan — every motion policy holds at once.
        case stop(UInt64)
    }

    let kind: Kind
    init(_ kind: Kind) { self.kind = kind }
}

import Foundation

/// A plan as a back end writes it (the plan schema's shape):
/// `{"steps": [{"ability": "goto", "arguments": {"x": 2, "y": 3}}, …]}`. Nothing in it is trusted
/// until `PlanValidator` has turned it into a `ValidatedPlan`.
public struct Plan: Sendable, Equatable, Codable {
    public var steps: [PlanStep]
    public init(steps: [PlanStep]) { self.steps = steps }

    /// Compact JSON with sorted keys: what a back end would answer.
    public var json: JSONValue { .object(["steps": .array(steps.map(\.json))]) }
}

public struct PlanStep: Sendable, Equatable, Codable {
    public var ability: String
    public var arguments: [String: JSONValue]
    public init(ability: String, arguments: [String: JSONValue] = [:]) {
        self.ability = ability
        self.arguments = arguments
    }

    public var json: JSONValue { .object(["ability": .string(ability), "arguments": .object(arguments)]) }
}

/// A point of a plan (m, odom frame).
public struct PlanPoint: Sendable, Equatable, Codable {
    public var x: Double
    public var y: Double
    public init(x: Double, y: Double) {
        self.x = x
        self.y = y
    }
}

/// What one accepted step asks for, typed: every number finite and within its bounds, every
/// point inside the workspace.
public enum StepCommand: Sendable, Equatable {
    /// Speed in m/s: the step's, or its policy's own when the step gives none.
    case goto(PlanPoint, speed: Double?)
    case patrol([PlanPoint], speed: Double?)
    /// °C.
    case setTemperature(Double)
    /// °C for minutes.
    case hold(temperature: Double, minutes: Double)
    case stop
    case wait(seconds: Double)
}

/// One accepted step: the ability, the policy that executes it, the command and its limits.
public struct ValidatedStep: Sendable, Equatable {
    public var ability: String
    public var action: String
    /// nil for the built-in actions (`stop`, `wait`).
    public var policy: String?
    public var command: StepCommand
    /// The ability's `timeout_s`.
    public var timeoutS: Double?
    public var noProgress: NoProgressLimit?

    public init(ability: String, action: String, policy: String?, command: StepCommand, timeoutS: Double?,
                noProgress: NoProgressLimit?) {
        self.ability = ability
        self.action = action
        self.policy = policy
        self.command = command
        self.timeoutS = timeoutS
        self.noProgress = noProgress
    }
}

/// The ability's `no_progress`: less than `minProgress` closer within `timeS` is no progress.
public struct NoProgressLimit: Sendable, Equatable {
    public var minProgress: Double
    public var timeS: Double
    public init(minProgress: Double, timeS: Double) {
        self.minProgress = minProgress
        self.timeS = timeS
    }
}

/// A plan that passed every check, for the goal it was requested for.
public struct ValidatedPlan: Sendable, Equatable {
    public var goalID: UInt64
    public var steps: [ValidatedStep]
    /// The request's latch epoch (`PlanRequest.latchEpoch`): the plan is for that epoch only.
    public var latchEpoch: UInt64
    public init(goalID: UInt64, steps: [ValidatedStep], latchEpoch: UInt64 = 0) {
        self.goalID = goalID
        self.steps = steps
        self.latchEpoch = latchEpoch
    }
}

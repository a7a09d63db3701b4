import RTScheduler
import SafetyGuard

/// What the plan executor asks of a policy that executes abilities (docs/planner.md,
/// "Execution"). Handed over on the dispatch thread, under the control lock, between two steps of
/// the policy: a value (its points were built off the dispatch thread), so handing it over never
/// allocates.
public enum PlanDirective: Sendable {
    /// No plan has directed the policy: it does what its configuration says (a `waypoints` policy
    /// without `points` has no opinion).
    case none
    /// Stand still / keep what it has: a plan ended, failed or was cancelled, or a `stop` step.
    /// Nothing a plan started resumes by itself.
    case hold
    /// Drive through these points (m, odom frame) in order, at `speed` (m/s; nil: the policy's own).
    /// `serial` tells one directive from the next, so the policy starts afresh on a new one.
    case route(points: [(x: Double, y: Double)], speed: Double?, serial: UInt64)
    /// A thermostat's setpoint (°C).
    case setpoint(Double)
}

/// How far a policy has come with its directive, as the executor reads it each tick.
public struct PlanReading: Sendable, Equatable {
    /// Points passed (routes).
    public var reached: Int
    /// What is left: m along the rest of a route, °C to a setpoint; NaN: unknown (no pose, no
    /// temperature).
    public var remaining: Double
    /// The directive is done: the last point passed, the temperature within the band.
    public var done: Bool
    /// The directive it reports on (a route's `serial`; 0 otherwise).
    public var serial: UInt64

    public init(reached: Int = 0, remaining: Double = .nan, done: Bool = false, serial: UInt64 = 0) {
        self.reached = reached
        self.remaining = remaining
        self.done = done
        self.serial = serial
    }
}

extension ControlPolicy {
    /// A policy that executes no ability ignores directives.
    public mutating func direct(_ directive: PlanDirective) {}
    /// …and has nothing to report.
    public var planReading: PlanReading { PlanReading() }
}

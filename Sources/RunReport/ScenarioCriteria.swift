// libc's math only (cos, hypot, log10): the module stays free of Foundation.
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One success criterion of a scenario, judged on the simulator's ground truth (a `RunTrace`).
///
/// JSON: `{"kind":"reach_waypoint","waypoint":3,"within_s":20,"tolerance_m":0.2}` and so on; the
/// optional fields take their defaults when left out.
public enum ScenarioCriterion: Sendable, Equatable, Hashable {
    /// The body never touched a wall or an obstacle (rover).
    case noCollision
    /// Waypoint `waypoint` (numbered from 1, as drawn) passed within `tolerance` metres before
    /// `within` seconds, after every earlier waypoint was passed in order (rover).
    case reachWaypoint(waypoint: Int, within: Double, tolerance: Double = 0.2)
    /// Every latch falls inside an injected fault's window, extended by `grace` seconds for the
    /// reaction (a fault without an end lasts to the end of the run).
    case neverLatchedExceptInjected(grace: Double = 1)
    /// The chamber stays within ±`celsius` of the setpoint from `afterSettling` seconds on (rig).
    case temperatureWithin(celsius: Double, afterSettling: Double)
    /// No critical task missed a deadline (the count comes from the caller's scheduler statistics).
    case zeroCriticalMisses
}

/// One criterion's verdict, with its reason in words either way.
public struct CriterionResult: Sendable, Equatable, Codable {
    public var criterion: ScenarioCriterion
    public var passed: Bool
    public var reason: String
    public init(criterion: ScenarioCriterion, passed: Bool, reason: String) {
        self.criterion = criterion
        self.passed = passed
        self.reason = reason
    }
}

/// A scenario's success criteria, evaluated together on one run.
public struct ScenarioCriteria: Sendable, Equatable, Codable {
    public var criteria: [ScenarioCriterion]

    public init(_ criteria: [ScenarioCriterion]) { self.criteria = criteria }

    /// One result per criterion, in order. `criticalMisses`: deadline misses of critical tasks in
    /// the run, as the scheduler counted them.
    public func evaluate(_ trace: RunTrace, criticalMisses: Int) -> [CriterionResult] {
        criteria.map { $0.evaluate(trace, criticalMisses: criticalMisses) }
    }
}

extension ScenarioCriterion {
    public func evaluate(_ trace: RunTrace, criticalMisses: Int) -> CriterionResult {
        let (passed, reason) = judge(trace, criticalMisses: criticalMisses)
        return CriterionResult(criterion: self, passed: passed, reason: reason)
    }

    private func judge(_ trace: RunTrace, criticalMisses: Int) -> (Bool, String) {
        switch self {
        case .noCollision:
            return Self.noCollision(trace)
        case let .reachWaypoint(waypoint, within, tolerance):
            return Self.reach(trace, waypoint: waypoint, within: within, tolerance: tolerance)
        case let .neverLatchedExceptInjected(grace):
            return Self.latchesInjected(trace, grace: grace)
        case let .temperatureWithin(celsius, settling):
            return Self.temperature(trace, within: celsius, after: settling)
        case .zeroCriticalMisses:
            if criticalMisses < 0 { return (false, "critical deadline misses unknown (count \(criticalMisses))") }
            return criticalMisses == 0 ? (true, "no critical deadline miss")
                : (false, plural(criticalMisses, "critical deadline miss", "critical deadline misses"))
        }
    }

    // MARK: rover

    private static func noCollision(_ trace: RunTrace) -> (Bool, String) {
        guard let rover = trace.rover else { return (false, "no rover in this trace: collisions cannot be judged") }
        guard let first = rover.collisions.first else {
            return (true, "no collision in \(s(trace.duration))")
        }
        return (false, "\(plural(rover.collisions.count, "collision", "collisions")): first at \(s(first.t)) at (\(m(first.x, unit: false)), \(m(first.y, unit: false))) m")
    }

    /// Closest approach of the path to `target`, searched from sample index `from` on; segments
    /// between samples count (the rover passes between them), with the time interpolated.
    private struct Approach {
        var distance: Double
        var t: Double
        /// Index of the segment's end sample (the search for the next waypoint starts there).
        var index: Int
    }

    /// The first moment the path comes within `tolerance` of `target` from `from` on, or nil;
    /// and the closest approach over the same part of the path.
    private static func approach(_ samples: [PathSample], to target: Point2D, from: Int,
                                 tolerance: Double) -> (first: Approach?, closest: Approach?) {
        var closest: Approach?
        guard from < samples.count else { return (nil, nil) }
        func consider(_ a: Approach) -> Bool {
            if a.distance < closest?.distance ?? .infinity { closest = a }
            return a.distance <= tolerance
        }
        let s0 = samples[from]
        if consider(Approach(distance: hypot(s0.x - target.x, s0.y - target.y), t: s0.t, index: from)) {
            return (closest, closest)
        }
        var i = from + 1
        while i < samples.count {
            let a = samples[i - 1], b = samples[i]
            let dx = b.x - a.x, dy = b.y - a.y
            let length2 = dx * dx + dy * dy
            // Projection of the target on the segment's line (unclamped), and the nearest point on the segment.
            let projection = length2 > 0 ? ((target.x - a.x) * dx + (target.y - a.y) * dy) / length2 : 1
            let f = min(max(projection, 0), 1)
            let d = hypot(a.x + f * dx - target.x, a.y + f * dy - target.y)
            guard d.isFinite else { i += 1; continue }
            if consider(Approach(distance: d, t: a.t + f * (b.t - a.t), index: i)) {
                // The moment counted is where the segment enters the tolerance circle: back from the
                // projection by the half-chord (the start was outside, or the previous segment had won).
                let perpendicular = hypot(a.x + projection * dx - target.x, a.y + projection * dy - target.y)
                let halfChord = length2 > 0 ? max(tolerance * tolerance - perpendicular * perpendicular, 0).squareRoot() / length2.squareRoot() : 0
                let entry = min(max(projection - halfChord, 0), f)
                return (Approach(distance: tolerance, t: a.t + entry * (b.t - a.t), index: i), closest)
            }
            i += 1
        }
        return (nil, closest)
    }

    private static func reach(_ trace: RunTrace, waypoint: Int, within: Double, tolerance: Double) -> (Bool, String) {
        guard let rover = trace.rover else { return (false, "no rover in this trace: waypoint \(waypoint) cannot be judged") }
        guard waypoint >= 1, waypoint <= rover.waypoints.count else {
            return (false, "waypoint \(waypoint) not defined: the trace has \(plural(rover.waypoints.count, "waypoint", "waypoints"))")
        }
        guard tolerance.isFinite, tolerance >= 0, within.isFinite else {
            return (false, "waypoint \(waypoint): tolerance and time limit must be finite numbers ≥ 0")
        }
        guard !rover.samples.isEmpty else { return (false, "waypoint \(waypoint) never reached: no path samples") }
        var from = 0
        for k in 1...waypoint {
            let target = rover.waypoints[k - 1]
            let (first, closest) = approach(rover.samples, to: target, from: from, tolerance: tolerance)
            let name = "waypoint \(k)"
            guard let first else {
                let near = closest.map { ": closest \(m($0.distance)) at \(s($0.t))" } ?? ""
                let order = k < waypoint ? " (needed before waypoint \(waypoint))" : ""
                let after = k > 1 ? " after waypoint \(k - 1)" : ""
                return (false, "\(name) never within \(m(tolerance))\(after)\(order)\(near)")
            }
            if first.t > within {
                let order = k < waypoint ? " (needed before waypoint \(waypoint))" : ""
                return (false, "\(name) within \(m(tolerance)) only at \(s(first.t)), after the limit of \(s(within))\(order)")
            }
            if k == waypoint {
                return (true, "\(name) within \(m(tolerance)) at \(s(first.t)) (limit \(s(within)))")
            }
            from = first.index
        }
        return (false, "waypoint \(waypoint) never reached")  // the loop always returns at k == waypoint
    }

    private static func latchesInjected(_ trace: RunTrace, grace: Double) -> (Bool, String) {
        guard grace.isFinite, grace >= 0 else { return (false, "grace period must be a finite number ≥ 0 (got \(grace))") }
        let outside = trace.latches.filter { latch in
            !trace.faults.contains { f in latch.t >= f.start && latch.t <= trace.end(of: f) + grace }
        }.sorted { $0.t < $1.t }
        if trace.latches.isEmpty { return (true, "never latched") }
        guard let first = outside.first else {
            return (true, "\(plural(trace.latches.count, "latch", "latches")), each within an injected fault's window (+\(s(grace)) grace)")
        }
        let others = outside.count > 1 ? " (and \(outside.count - 1) more)" : ""
        let window = trace.faults.isEmpty ? "no fault was injected" : "outside every injected fault's window (+\(s(grace)) grace)"
        return (false, "latched at \(s(first.t)) (\(first.cause)): \(window)\(others)")
    }

    // MARK: rig

    private static func temperature(_ trace: RunTrace, within celsius: Double, after settling: Double) -> (Bool, String) {
        guard let rig = trace.rig else { return (false, "no rig in this trace: the temperature cannot be judged") }
        guard celsius.isFinite, celsius >= 0, settling.isFinite else {
            return (false, "temperature tolerance and settling time must be finite numbers ≥ 0")
        }
        let judged = rig.samples.filter { $0.t >= settling }
        guard !judged.isEmpty else {
            return (false, "no rig sample after the \(s(settling)) settling time (samples end at \(s(rig.samples.last?.t ?? 0)))")
        }
        var worst: RigSample?
        var worstError = -1.0
        var out = 0
        for sample in judged {
            let error = abs(sample.temperature - sample.setpoint)
            // A missing value is no evidence of being within: it counts as out.
            let e = error.isFinite ? error : .infinity
            if e > celsius { out += 1 }
            if e > worstError {
                worstError = e
                worst = sample
            }
        }
        guard let worst else { return (false, "no rig sample after \(s(settling))") }
        let detail = "\(c(worst.temperature)) at \(s(worst.t)), setpoint \(c(worst.setpoint))"
        if out == 0 {
            return (true, "within ±\(c(celsius)) after \(s(settling)): worst \(c(worstError)) off (\(detail))")
        }
        return (false, "\(out) of \(judged.count) samples after \(s(settling)) beyond ±\(c(celsius)): worst \(worstError.isFinite ? c(worstError) : "unknown") off (\(detail))")
    }

    // MARK: words

    private static func s(_ seconds: Double) -> String { "\(SVGCanvas.fixed(seconds, decimals: 1)) s" }
    private static func m(_ metres: Double, unit: Bool = true) -> String { SVGCanvas.fixed(metres, decimals: 2) + (unit ? " m" : "") }
    private static func c(_ celsius: Double) -> String { "\(SVGCanvas.fixed(celsius, decimals: 1)) °C" }
}

// MARK: JSON

extension ScenarioCriterion: Codable {
    private enum Key: String, CodingKey {
        case kind, waypoint, withinS = "within_s", toleranceM = "tolerance_m", graceS = "grace_s"
        case celsius, settlingS = "settling_s"
    }

    private enum Kind: String, Codable {
        case noCollision = "no_collision", reachWaypoint = "reach_waypoint"
        case neverLatchedExceptInjected = "never_latched_except_injected"
        case temperatureWithin = "temperature_within", zeroCriticalMisses = "zero_critical_misses"
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: Key.self)
        switch try c.decode(Kind.self, forKey: .kind) {
        case .noCollision: self = .noCollision
        case .reachWaypoint:
            self = .reachWaypoint(waypoint: try c.decode(Int.self, forKey: .waypoint), within: try c.decode(Double.self, forKey: .withinS),
                                  tolerance: try c.decodeIfPresent(Double.self, forKey: .toleranceM) ?? 0.2)
        case .neverLatchedExceptInjected:
            self = .neverLatchedExceptInjected(grace: try c.decodeIfPresent(Double.self, forKey: .graceS) ?? 1)
        case .temperatureWithin:
            self = .temperatureWithin(celsius: try c.decode(Double.self, forKey: .celsius),
                                      afterSettling: try c.decodeIfPresent(Double.self, forKey: .settlingS) ?? 0)
        case .zeroCriticalMisses: self = .zeroCriticalMisses
        }
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: Key.self)
        switch self {
        case .noCollision: try c.encode(Kind.noCollision, forKey: .kind)
        case let .reachWaypoint(waypoint, within, tolerance):
            try c.encode(Kind.reachWaypoint, forKey: .kind)
            try c.encode(waypoint, forKey: .waypoint)
            try c.encode(within, forKey: .withinS)
            try c.encode(tolerance, forKey: .toleranceM)
        case let .neverLatchedExceptInjected(grace):
            try c.encode(Kind.neverLatchedExceptInjected, forKey: .kind)
            try c.encode(grace, forKey: .graceS)
        case let .temperatureWithin(celsius, settling):
            try c.encode(Kind.temperatureWithin, forKey: .kind)
            try c.encode(celsius, forKey: .celsius)
            try c.encode(settling, forKey: .settlingS)
        case .zeroCriticalMisses: try c.encode(Kind.zeroCriticalMisses, forKey: .kind)
        }
    }
}

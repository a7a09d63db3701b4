import Foundation
import RTScheduler
import RobotConfig
import SafetyGuard

/// `waypoints`: pure pursuit (Coulter 1992) along the straight segments between a list of points,
/// on the odometry pose. The goal is the point `lookahead` metres along the current segment beyond
/// the robot's projection onto it (never past the segment's end, so each waypoint is approached
/// along its segment and passed within `tolerance`), reached along an arc of curvature 2·y/d².
/// Well off its heading (a corner) it turns on the spot instead of sweeping wide, and it slows
/// down approaching the last point. An unknown pose: no motion. At the end it holds still (zero),
/// or starts over with `loop: true`.
///
/// Plans (`goto`, `patrol`): a route directive replaces the points (never looped) and its commands
/// carry the `planner` origin; when the plan ends, fails or is cancelled it holds still until the
/// next plan. Without configured `points` it has no opinion until a plan directs it.
struct WaypointsPolicy: ControlPolicy {
    let configuredPoints: [(x: Double, y: Double)]
    let configuredSpeed: Double
    let lookahead: Double
    let tolerance: Double
    let maxAngular: Double
    let configuredLoop: Bool
    let kinematics: DiffDrive
    private(set) var points: [(x: Double, y: Double)]
    private var speed: Double
    private var loop: Bool
    /// The waypoint being approached; `points.count` when done.
    private(set) var target = 0
    /// Where the current segment starts (the previous waypoint, or the pose at the first step).
    private var segmentStart: (x: Double, y: Double)?
    private var directive = Directed.configured
    /// The route directive followed now (0: none).
    private var serial: UInt64 = 0
    /// The pose at the last step, for the remaining distance.
    private var lastPose: World.Pose?

    private enum Directed { case configured, hold, route }

    var origin: CommandOrigin { directive == .configured ? .policy : .planner }

    init(points: [(x: Double, y: Double)], speed: Double, lookahead: Double, tolerance: Double, maxAngular: Double, loop: Bool,
         kinematics: DiffDrive) {
        configuredPoints = points
        configuredSpeed = speed
        configuredLoop = loop
        self.points = points
        self.speed = speed
        self.loop = loop
        self.lookahead = lookahead
        self.tolerance = tolerance
        self.maxAngular = maxAngular
        self.kinematics = kinematics
    }

    mutating func direct(_ next: PlanDirective) {
        switch next {
        case .none:
            directive = .configured
            points = configuredPoints
            speed = configuredSpeed
            loop = configuredLoop
            serial = 0
        case .hold:
            directive = .hold
        case .route(let route, let routeSpeed, let routeSerial):
            guard routeSerial != serial || directive != .route else { return }
            directive = .route
            points = route
            speed = routeSpeed ?? configuredSpeed
            loop = false
            serial = routeSerial
        case .setpoint:
            return
        }
        target = 0
        segmentStart = nil
    }

    /// Points passed and the distance left along the route (to the current point, then along the
    /// remaining segments).
    var planReading: PlanReading {
        guard directive == .route else { return PlanReading(serial: serial) }
        let done = target >= points.count
        var remaining = Double.nan
        if done {
            remaining = 0
        } else if let pose = lastPose, pose.x.isFinite, pose.y.isFinite {
            remaining = hypot(points[target].x - pose.x, points[target].y - pose.y)
            var i = target + 1
            while i < points.count {
                remaining += hypot(points[i].x - points[i - 1].x, points[i].y - points[i - 1].y)
                i += 1
            }
        }
        return PlanReading(reached: min(target, points.count), remaining: remaining, done: done, serial: serial)
    }

    mutating func step(_ world: World, now: Instant) -> ChannelValues? {
        lastPose = world.pose
        switch directive {
        case .hold: return ChannelValues(count: 2)
        case .configured where points.isEmpty: return nil
        case .configured, .route: break
        }
        guard let pose = world.pose, pose.x.isFinite, pose.y.isFinite, pose.yaw.isFinite else { return ChannelValues(count: 2) }
        if segmentStart == nil { segmentStart = (pose.x, pose.y) }
        while target < points.count, hypot(points[target].x - pose.x, points[target].y - pose.y) <= tolerance {
            segmentStart = points[target]
            target += 1
            if target == points.count && loop { target = 0 }
        }
        guard target < points.count, let a = segmentStart else { return ChannelValues(count: 2) }
        let b = points[target]
        // The goal: `lookahead` beyond the projection onto segment a→b, at most b.
        let sx = b.x - a.x, sy = b.y - a.y
        let length = hypot(sx, sy)
        var goal = b
        if length > 1e-9 {
            let along = ((pose.x - a.x) * sx + (pose.y - a.y) * sy) / length
            let s = min(length, max(0, along) + lookahead)
            goal = (a.x + sx / length * s, a.y + sy / length * s)
        }
        let dx = goal.x - pose.x, dy = goal.y - pose.y
        // The goal in the robot's frame.
        let c = cos(pose.yaw), sn = sin(pose.yaw)
        let xr = c * dx + sn * dy, yr = -sn * dx + c * dy
        let distance = hypot(xr, yr)
        let bearing = atan2(yr, xr)
        if abs(bearing) > .pi / 4 {
            // Well off the heading (a corner): turn toward it on the spot, an arc would sweep wide.
            return kinematics.wheels(linear: 0, angular: bearing > 0 ? maxAngular : -maxAngular)
        }
        let remaining = hypot(b.x - pose.x, b.y - pose.y)
        let isLast = target == points.count - 1 && !loop
        let v = (isLast ? min(speed, max(0.05, remaining)) : speed) * cos(bearing)
        let curvature = 2 * yr / max(distance * distance, 1e-6)
        return kinematics.wheels(linear: v, angular: max(-maxAngular, min(maxAngular, v * curvature)))
    }
}

enum WaypointsKind: PolicyKind {
    static let spec = KindSpec(kind: "waypoints", summary: "pure pursuit over a list of points on the odometry pose", fields: [
        FieldSpec("points", .list(.list(.number(), minCount: 2), minCount: 1),
                  help: "[[x, y], …] in the odom frame (m); without it, no opinion until a plan's goto or patrol directs it"),
        FieldSpec("speed", .number(0...10), help: "forward speed (m/s), default 0.3"),
        FieldSpec("lookahead", .number(0.01...10), help: "pure pursuit's look-ahead distance along the segment (m), default 0.3"),
        FieldSpec("tolerance", .number(0.01...10), help: "a point counts as passed within this distance (m), default 0.15"),
        FieldSpec("max_angular", .number(0...20), help: "turn rate limit (rad/s), default 1.5"),
        FieldSpec("loop", .bool, help: "start over after the last point, default false"),
    ])

    static func make(_ settings: PolicySettings, context: PolicyBuildContext) throws -> PolicyBehaviour {
        let s = context.settings(of: settings)
        let odometry = try context.wheels(for: settings)
        let points = settings.settings["points"] == nil ? [] : try s.points("points")
        if settings.settings["points"] != nil && points.isEmpty {
            throw KindError("policy \(settings.name): `points` needs at least one point")
        }
        return .source(WaypointsPolicy(points: points, speed: try s.number("speed", default: 0.3),
                                       lookahead: try s.number("lookahead", default: 0.3),
                                       tolerance: try s.number("tolerance", default: 0.15),
                                       maxAngular: try s.number("max_angular", default: 1.5),
                                       loop: try s.bool("loop", default: false), kinematics: DiffDrive(odometry)))
    }
}

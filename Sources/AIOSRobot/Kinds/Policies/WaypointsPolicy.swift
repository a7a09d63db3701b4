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
struct WaypointsPolicy: ControlPolicy {
    let points: [(x: Double, y: Double)]
    let speed: Double
    let lookahead: Double
    let tolerance: Double
    let maxAngular: Double
    let loop: Bool
    let kinematics: DiffDrive
    /// The waypoint being approached; `points.count` when done.
    private(set) var target = 0
    /// Where the current segment starts (the previous waypoint, or the pose at the first step).
    private var segmentStart: (x: Double, y: Double)?
    var origin: CommandOrigin { .policy }

    init(points: [(x: Double, y: Double)], speed: Double, lookahead: Double, tolerance: Double, maxAngular: Double, loop: Bool,
         kinematics: DiffDrive) {
        self.points = points
        self.speed = speed
        self.lookahead = lookahead
        self.tolerance = tolerance
        self.maxAngular = maxAngular
        self.loop = loop
        self.kinematics = kinematics
    }

    mutating func step(_ world: World, now: Instant) -> ChannelValues? {
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
        FieldSpec("points", .list(.list(.number(), minCount: 2), minCount: 1), required: true, help: "[[x, y], …] in the odom frame (m)"),
        FieldSpec("speed", .number(0...10), help: "forward speed (m/s), default 0.3"),
        FieldSpec("lookahead", .number(0.01...10), help: "pure pursuit's look-ahead distance along the segment (m), default 0.3"),
        FieldSpec("tolerance", .number(0.01...10), help: "a point counts as passed within this distance (m), default 0.15"),
        FieldSpec("max_angular", .number(0...20), help: "turn rate limit (rad/s), default 1.5"),
        FieldSpec("loop", .bool, help: "start over after the last point, default false"),
    ])

    static func make(_ settings: PolicySettings, context: PolicyBuildContext) throws -> PolicyBehaviour {
        let s = context.settings(of: settings)
        let odometry = try context.wheels(for: settings)
        let points = try s.points("points")
        guard !points.isEmpty else { throw KindError("policy \(settings.name): `points` needs at least one point") }
        return .source(WaypointsPolicy(points: points, speed: try s.number("speed", default: 0.3),
                                       lookahead: try s.number("lookahead", default: 0.3),
                                       tolerance: try s.number("tolerance", default: 0.15),
                                       maxAngular: try s.number("max_angular", default: 1.5),
                                       loop: try s.bool("loop", default: false), kinematics: DiffDrive(odometry)))
    }
}

import Foundation
import RTScheduler
import RobotConfig
import SafetyGuard

/// `waypoints`: pure pursuit over a list of points on the odometry pose. The carrot is the current
/// waypoint itself (so each is passed within `tolerance`), reached along a circular arc of
/// curvature 2·y/d² (Coulter 1992); it turns on the spot when the point is well off its heading,
/// and slows down approaching the last point. An unknown pose: no motion. At the end it holds
/// still (zero), or starts over with `loop: true`.
struct WaypointsPolicy: ControlPolicy {
    let points: [(x: Double, y: Double)]
    let speed: Double
    let tolerance: Double
    let maxAngular: Double
    let loop: Bool
    let kinematics: DiffDrive
    /// The waypoint being approached; `points.count` when done.
    private(set) var target = 0
    /// Waypoints passed (for status and scenarios).
    private(set) var passed = 0
    var origin: CommandOrigin { .policy }

    init(points: [(x: Double, y: Double)], speed: Double, tolerance: Double, maxAngular: Double, loop: Bool, kinematics: DiffDrive) {
        self.points = points
        self.speed = speed
        self.tolerance = tolerance
        self.maxAngular = maxAngular
        self.loop = loop
        self.kinematics = kinematics
    }

    mutating func step(_ world: World, now: Instant) -> ChannelValues? {
        guard let pose = world.pose, pose.x.isFinite, pose.y.isFinite, pose.yaw.isFinite else { return ChannelValues(0, 0) }
        while target < points.count, hypot(points[target].x - pose.x, points[target].y - pose.y) <= tolerance {
            target += 1
            passed += 1
            if target == points.count && loop { target = 0 }
        }
        guard target < points.count else { return ChannelValues(0, 0) }
        let p = points[target]
        let dx = p.x - pose.x, dy = p.y - pose.y
        // The point in the robot's frame.
        let c = cos(pose.yaw), s = sin(pose.yaw)
        let xr = c * dx + s * dy, yr = -s * dx + c * dy
        let distance = hypot(xr, yr)
        let bearing = atan2(yr, xr)
        if abs(bearing) > .pi / 3 {
            // Well off the heading: turn toward it on the spot (an arc would sweep wide).
            return kinematics.wheels(linear: 0, angular: bearing > 0 ? maxAngular : -maxAngular)
        }
        let isLast = target == points.count - 1 && !loop
        let v = isLast ? min(speed, max(0.05, distance)) : speed
        let curvature = 2 * yr / max(distance * distance, 1e-6)
        let w = max(-maxAngular, min(maxAngular, v * curvature))
        return kinematics.wheels(linear: v * cos(bearing).magnitude, angular: w)
    }
}

enum WaypointsKind: PolicyKind {
    static let spec = KindSpec(kind: "waypoints", summary: "pure pursuit over a list of points on the odometry pose", fields: [
        FieldSpec("points", .list(.list(.number(), minCount: 2), minCount: 1), required: true, help: "[[x, y], …] in the odom frame (m)"),
        FieldSpec("speed", .number(0...10), help: "forward speed (m/s), default 0.3"),
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
                                       tolerance: try s.number("tolerance", default: 0.15),
                                       maxAngular: try s.number("max_angular", default: 1.5),
                                       loop: try s.bool("loop", default: false), kinematics: DiffDrive(odometry)))
    }
}

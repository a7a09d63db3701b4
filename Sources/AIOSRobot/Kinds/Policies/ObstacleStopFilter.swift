import RTScheduler
import RobotConfig
import SafetyGuard

/// `obstacle_stop`: a filter on whichever policy wins the wheels. Closer than `stop_distance` to
/// an obstacle ahead, or with an unknown range (NaN), forward motion is removed (turning on the
/// spot and backing away stay possible); between `stop_distance` and `slow_distance` it is scaled
/// down linearly.
struct ObstacleStopFilter: ControlFilter {
    let range: Int
    let stopDistance: Double
    let slowDistance: Double

    mutating func filter(_ values: inout ChannelValues, world: World, now: Instant) -> Bool {
        let left = values[0], right = values[1]
        let forward = (left + right) / 2
        guard forward > 0 else { return false }
        let r = world.sensors[range]
        let scale: Double
        if !r.isFinite || r <= stopDistance {
            scale = 0
        } else if r < slowDistance {
            scale = (r - stopDistance) / (slowDistance - stopDistance)
        } else {
            return false
        }
        let turn = (right - left) / 2
        values[0] = forward * scale - turn
        values[1] = forward * scale + turn
        return true
    }
}

enum ObstacleStopKind: PolicyKind {
    static let spec = KindSpec(kind: "obstacle_stop", summary: "a filter: no forward motion near an obstacle ahead (or with an unknown range)", fields: [
        FieldSpec("range_sensor", .string, required: true, help: "the forward range sensor (m)", refersTo: .sensor),
        FieldSpec("stop_distance", .number(0...100), required: true, help: "no forward motion at or below this range (m)"),
        FieldSpec("slow_distance", .number(0...100), help: "forward motion scaled down below this range (m), default stop_distance (no slowing)"),
    ], isFilter: true)

    static func make(_ settings: PolicySettings, context: PolicyBuildContext) throws -> PolicyBehaviour {
        let s = context.settings(of: settings)
        _ = try context.wheels(for: settings)
        let stop = try s.number("stop_distance")
        let slow = try s.number("slow_distance", default: stop)
        guard slow >= stop else { throw KindError("policy \(settings.name): slow_distance must be at least stop_distance") }
        return .filter(ObstacleStopFilter(range: try context.sensor(try s.string("range_sensor"), for: settings),
                                          stopDistance: stop, slowDistance: slow))
    }
}

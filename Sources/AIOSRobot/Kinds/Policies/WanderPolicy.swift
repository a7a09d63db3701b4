import RTScheduler
import RobotConfig
import SafetyGuard

/// `wander`: today's obstacle-avoiding drive (cruise, slow down, turn away, go on) on one forward
/// range sensor. An unknown range (NaN) is treated as blocked: it does not move.
struct WanderPolicy: ControlPolicy {
    var drive: ObstacleAvoidingDrive
    let range: Int
    var origin: CommandOrigin { .policy }

    mutating func step(_ world: World, now: Instant) -> ChannelValues? {
        let (left, right) = drive.step(range: world.sensors[range])
        return ChannelValues(left, right)
    }
}

enum WanderKind: PolicyKind {
    static let spec = KindSpec(kind: "wander", summary: "cruise, slow down near obstacles, turn away (one forward range sensor)", fields: [
        FieldSpec("range_sensor", .string, required: true, help: "the forward range sensor (m)", refersTo: .sensor),
        FieldSpec("cruise", .number(0...1000), help: "wheel speed when clear (rad/s), default 10"),
        FieldSpec("slow_range", .number(0...100), help: "below this range (m) it slows down, default 1.2"),
        FieldSpec("turn_range", .number(0...100), help: "below this range (m) it turns on the spot, default 0.45"),
        FieldSpec("clear_range", .number(0...100), help: "turning ends above this range (m), default 0.9"),
        FieldSpec("turn_speed", .number(0...1000), help: "wheel speed while turning (rad/s), default 5"),
    ])

    static func make(_ settings: PolicySettings, context: PolicyBuildContext) throws -> PolicyBehaviour {
        let s = context.settings(of: settings)
        _ = try context.wheels(for: settings)
        var p = ObstacleAvoidingDrive.Parameters()
        p.cruise = try s.number("cruise", default: p.cruise)
        p.slowRange = try s.number("slow_range", default: p.slowRange)
        p.turnRange = try s.number("turn_range", default: p.turnRange)
        p.clearRange = try s.number("clear_range", default: p.clearRange)
        p.turnSpeed = try s.number("turn_speed", default: p.turnSpeed)
        guard p.turnRange < p.clearRange else { throw KindError("policy \(settings.name): turn_range must be below clear_range") }
        return .source(WanderPolicy(drive: ObstacleAvoidingDrive(parameters: p),
                                    range: try context.sensor(try s.string("range_sensor"), for: settings)))
    }
}

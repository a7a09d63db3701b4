import RTScheduler
import RobotConfig
import SafetyGuard

/// `teleop`: a gamepad's sticks to wheel speeds while the deadman key is held (teleop_twist_joy's
/// `enable_button`). On release it commands a stop for `release_hold_ms`, then has no opinion, so
/// the arbiter hands the wheels back to the next policy by priority.
struct TeleopPolicy: ControlPolicy {
    let gamepad: Int
    let linearAxis: Int
    let angularAxis: Int
    let maxLinear: Double
    let maxAngular: Double
    let kinematics: DiffDrive
    let releaseHold: Duration
    var origin: CommandOrigin { .teleop }

    mutating func step(_ world: World, now: Instant) -> ChannelValues? {
        let pad = world.gamepads[gamepad]
        guard pad.deadman else {
            // Released (or never pressed): a stop for a moment, then no opinion.
            guard let changed = pad.deadmanChangedAt, now - changed < releaseHold else { return nil }
            return ChannelValues(count: 2)  // both wheels at rest
        }
        // The kernel reports an axis only when it changes: one not reported yet is at rest (centre).
        // The deadman still gates everything.
        let v = pad.axes[linearAxis].isFinite ? pad.axes[linearAxis] : 0
        let w = pad.axes[angularAxis].isFinite ? pad.axes[angularAxis] : 0
        return kinematics.wheels(linear: max(-1, min(1, v)) * maxLinear, angular: max(-1, min(1, w)) * maxAngular)
    }
}

enum TeleopKind: PolicyKind {
    static let spec = KindSpec(kind: "teleop", summary: "gamepad sticks to wheel speeds while a deadman key is held", fields: [
        FieldSpec("input", .string, required: true, help: "the evdev input (its `deadman` key enables motion)", refersTo: .input),
        FieldSpec("linear_axis", .string, help: "axis name for forward speed, default `linear`"),
        FieldSpec("angular_axis", .string, help: "axis name for turning, default `angular`"),
        FieldSpec("max_linear", .number(0...10), required: true, help: "m/s at full stick"),
        FieldSpec("max_angular", .number(0...20), required: true, help: "rad/s at full stick"),
        FieldSpec("release_hold_ms", .number(0...10_000), help: "after the deadman's release, a stop for this long, default 500"),
    ])

    static func make(_ settings: PolicySettings, context: PolicyBuildContext) throws -> PolicyBehaviour {
        let s = context.settings(of: settings)
        let odometry = try context.wheels(for: settings)
        let pad = try context.gamepad(try s.string("input"), for: settings)
        let input = context.configuration.inputs.first { $0.name == (try? s.string("input")) }
        let hasDeadman = input.map { SettingsReader(owner: "", $0.settings) }
            .map { (try? $0.list("keys"))?.contains { $0["action"] == .string("deadman") } ?? false } ?? false
        guard hasDeadman else { throw KindError("policy \(settings.name): its input needs a key with action `deadman`") }
        return .source(TeleopPolicy(
            gamepad: pad,
            linearAxis: try context.axis(try s.string("linear_axis", default: "linear"), of: pad, for: settings),
            angularAxis: try context.axis(try s.string("angular_axis", default: "angular"), of: pad, for: settings),
            maxLinear: try s.number("max_linear"), maxAngular: try s.number("max_angular"),
            kinematics: DiffDrive(odometry), releaseHold: .milliseconds(try s.number("release_hold_ms", default: 500))))
    }
}

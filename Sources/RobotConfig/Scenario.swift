/// A simulated run to reproduce and judge (examples/scenarios/): which world and configuration,
/// where the robot starts, what is in its way, what goes wrong when, and what counts as success.
/// `robotd sim --scenario FILE` runs it; command-line flags take precedence over it, and it over
/// the configuration. Times are seconds from the start of the run.
public struct Scenario: Sendable, Equatable, Codable {
    /// `rover` or `iot-rig`.
    public var world: String?
    /// The robot's configuration, relative to the scenario's file; default: the world's example.
    public var config: String?
    public var seed: UInt64?
    public var seconds: Double?
    /// Rover: where it starts (the configuration's odometry starts there too).
    public var start: PoseSettings?
    /// Rover: the arena's pillars instead of the standard ones.
    public var obstacles: [ObstacleSettings]?
    /// Rover: the points of the configuration's `waypoints` policy (drawn, and judged by
    /// `reach_waypoint`).
    public var waypoints: [[Double]]?
    /// Simulator faults, as `--fault` takes them: `KIND@SECONDS[+DURATION]`.
    public var faults: [String]?
    /// Rover: the gamepad's e-stop pressed at this time; resets at these.
    public var estopAtS: Double?
    public var resetAtS: [Double]?
    /// Rig: the thermostat's setpoint; an operator's remote stop and reset at these times.
    public var setpoint: Double?
    public var remoteStopAtS: Double?
    public var remoteResetAtS: Double?
    public var criteria: [CriterionSettings]?

    public init() {}

    enum CodingKeys: String, CodingKey {
        case world, config, seed, seconds, start, obstacles, waypoints, faults, setpoint, criteria
        case estopAtS = "estop_at_s"
        case resetAtS = "reset_at_s"
        case remoteStopAtS = "remote_stop_at_s"
        case remoteResetAtS = "remote_reset_at_s"
    }

    public struct ObstacleSettings: Sendable, Equatable, Codable {
        public var x: Double
        public var y: Double
        public var radius: Double
    }

    /// One success criterion: a word (`no_collision`, `never_latched_except_injected`,
    /// `zero_critical_misses`) or a map (`{reach_waypoint: 3, within_s: 30}`,
    /// `{temperature_within_c: 0.5, after_s: 900}`).
    public enum CriterionSettings: Sendable, Equatable, Codable {
        case noCollision
        case neverLatchedExceptInjected(graceS: Double?)
        case zeroCriticalMisses
        case reachWaypoint(Int, withinS: Double, toleranceM: Double?)
        case temperatureWithin(celsius: Double, afterS: Double)

        enum Keys: String, CodingKey {
            case reachWaypoint = "reach_waypoint"
            case withinS = "within_s"
            case toleranceM = "tolerance_m"
            case temperatureWithinC = "temperature_within_c"
            case afterS = "after_s"
            case neverLatchedExceptInjected = "never_latched_except_injected"
            case graceS = "grace_s"
        }

        public init(from decoder: any Decoder) throws {
            if let word = try? decoder.singleValueContainer().decode(String.self) {
                switch word {
                case "no_collision": self = .noCollision
                case "never_latched_except_injected": self = .neverLatchedExceptInjected(graceS: nil)
                case "zero_critical_misses": self = .zeroCriticalMisses
                default:
                    throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "unknown criterion \(word)"))
                }
                return
            }
            let c = try decoder.container(keyedBy: Keys.self)
            if let k = try c.decodeIfPresent(Int.self, forKey: .reachWaypoint) {
                self = .reachWaypoint(k, withinS: try c.decode(Double.self, forKey: .withinS),
                                      toleranceM: try c.decodeIfPresent(Double.self, forKey: .toleranceM))
            } else if let x = try c.decodeIfPresent(Double.self, forKey: .temperatureWithinC) {
                self = .temperatureWithin(celsius: x, afterS: try c.decode(Double.self, forKey: .afterS))
            } else if c.contains(.neverLatchedExceptInjected) {
                self = .neverLatchedExceptInjected(graceS: try c.decodeIfPresent(Double.self, forKey: .graceS))
            } else {
                throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "unknown criterion"))
            }
        }

        public func encode(to encoder: any Encoder) throws {
            switch self {
            case .noCollision:
                var c = encoder.singleValueContainer()
                try c.encode("no_collision")
            case .zeroCriticalMisses:
                var c = encoder.singleValueContainer()
                try c.encode("zero_critical_misses")
            case .neverLatchedExceptInjected(let grace):
                var c = encoder.container(keyedBy: Keys.self)
                try c.encode(true, forKey: .neverLatchedExceptInjected)
                try c.encodeIfPresent(grace, forKey: .graceS)
            case .reachWaypoint(let k, let within, let tolerance):
                var c = encoder.container(keyedBy: Keys.self)
                try c.encode(k, forKey: .reachWaypoint)
                try c.encode(within, forKey: .withinS)
                try c.encodeIfPresent(tolerance, forKey: .toleranceM)
            case .temperatureWithin(let celsius, let after):
                var c = encoder.container(keyedBy: Keys.self)
                try c.encode(celsius, forKey: .temperatureWithinC)
                try c.encode(after, forKey: .afterS)
            }
        }
    }

    /// The scenario file's keys, for the validator (line and column for every problem).
    public static let fields: [FieldSpec] = [
        FieldSpec("world", .oneOf(["rover", "iot-rig"]), help: "which simulated world; default rover"),
        FieldSpec("config", .string, help: "the robot's configuration, relative to this file; default: the world's example"),
        FieldSpec("seed", .integer(0...Int.max), help: "seed of the sensor noise"),
        FieldSpec("seconds", .number(0.1...86_400), help: "length of the run (s)"),
        FieldSpec("start", .object([
            FieldSpec("x", .number(-1000...1000), required: true), FieldSpec("y", .number(-1000...1000), required: true),
            FieldSpec("yaw", .number(-10...10), required: true),
        ]), help: "rover: where it starts (m, m, rad)"),
        FieldSpec("obstacles", .list(.object([
            FieldSpec("x", .number(-1000...1000), required: true), FieldSpec("y", .number(-1000...1000), required: true),
            FieldSpec("radius", .number(0.01...100), required: true),
        ])), help: "rover: the arena's pillars instead of the standard ones"),
        FieldSpec("waypoints", .list(.list(.number(-1000...1000), minCount: 2), minCount: 1),
                  help: "rover: [[x, y], …] for the configuration's waypoints policy"),
        FieldSpec("faults", .list(.string), help: "KIND@SECONDS[+DURATION], as --fault takes them"),
        FieldSpec("estop_at_s", .number(0...86_400), help: "rover: the gamepad's e-stop pressed"),
        FieldSpec("reset_at_s", .list(.number(0...86_400)), help: "rover: the reset key pressed and released"),
        FieldSpec("setpoint", .number(-40...150), help: "rig: the thermostat's setpoint (°C)"),
        FieldSpec("remote_stop_at_s", .number(0...86_400), help: "rig: an operator's remote stop"),
        FieldSpec("remote_reset_at_s", .number(0...86_400), help: "rig: an operator's reset"),
        FieldSpec("criteria", .list(.either([
            .oneOf(["no_collision", "never_latched_except_injected", "zero_critical_misses"]),
            .object([FieldSpec("reach_waypoint", .integer(1...1000), required: true), FieldSpec("within_s", .number(0...86_400), required: true),
                     FieldSpec("tolerance_m", .number(0.001...10))]),
            .object([FieldSpec("temperature_within_c", .number(0...100), required: true), FieldSpec("after_s", .number(0...86_400), required: true)]),
            .object([FieldSpec("never_latched_except_injected", .bool, required: true), FieldSpec("grace_s", .number(0...60))]),
        ])), help: "success criteria, judged on the simulator's ground truth"),
    ]
}

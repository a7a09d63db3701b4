import Foundation
import Planner
import RobotConfig

/// `<prefix>abilities` (docs/mqtt.md, schema docs/schemas/abilities.schema.json): the robot's
/// ability vocabulary as its planner resolved it — each ability with its typed arguments, units and
/// effective bounds (`RobotConfiguration.resolveAbilities()`), and the plan's JSON Schema
/// (`PlanSchema`). Published retained at QoS 1 by the telemetry monitor at each connect of a robot
/// with `abilities`, so that a client of the running robot (`robotd mcp`) learns what it may ask
/// without reading the robot's file.
///
/// Written with its own encoder: the keys are spelled out in snake_case here, because the plan
/// schema inside must keep its own keys (`additionalProperties`, `maxItems`), which
/// `TelemetryJSON`'s key conversion would rewrite.
public struct AbilitiesPayload: Codable, Sendable, Equatable {
    /// A number's bounds: each end, and the limit it comes from (`BoundSource`: `workspace`,
    /// `planner_envelope`, …). An end that no limit narrowed is absent.
    public struct Bounds: Codable, Sendable, Equatable {
        public var minimum: Double?
        public var maximum: Double?
        public var minimumSource: String?
        public var maximumSource: String?

        enum CodingKeys: String, CodingKey {
            case minimum, maximum
            case minimumSource = "minimum_source"
            case maximumSource = "maximum_source"
        }

        public init(minimum: Double? = nil, maximum: Double? = nil, minimumSource: String? = nil, maximumSource: String? = nil) {
            self.minimum = minimum
            self.maximum = maximum
            self.minimumSource = minimumSource
            self.maximumSource = maximumSource
        }

        init(_ bounds: NumericBounds) {
            // ±greatest finite: the action's "any coordinate", which says nothing (as in the schema).
            if abs(bounds.lower.value) < 1e300 {
                minimum = bounds.lower.value
                minimumSource = bounds.lower.source.rawValue
            }
            if abs(bounds.upper.value) < 1e300 {
                maximum = bounds.upper.value
                maximumSource = bounds.upper.source.rawValue
            }
        }
    }

    public struct Argument: Codable, Sendable, Equatable {
        public var name: String
        /// `number`, or `points` (a list of `{x, y}`).
        public var type: String
        public var unit: String
        public var required: Bool
        public var description: String
        /// A number's bounds.
        public var bounds: Bounds?
        /// Points: each point's coordinates' bounds, and how many points a step may give.
        public var x: Bounds?
        public var y: Bounds?
        public var maxPoints: Int?

        enum CodingKeys: String, CodingKey {
            case name, type, unit, required, description, bounds, x, y
            case maxPoints = "max_points"
        }

        public init(name: String, type: String, unit: String, required: Bool, description: String, bounds: Bounds? = nil,
                    x: Bounds? = nil, y: Bounds? = nil, maxPoints: Int? = nil) {
            self.name = name
            self.type = type
            self.unit = unit
            self.required = required
            self.description = description
            self.bounds = bounds
            self.x = x
            self.y = y
            self.maxPoints = maxPoints
        }
    }

    public struct Ability: Codable, Sendable, Equatable {
        public var name: String
        /// The action it uses (`goto`, `patrol`, `set_temperature`, `hold`, `stop`, `wait`).
        public var action: String
        public var description: String
        /// The policy that executes it; absent for the built-in actions.
        public var policy: String?
        public var timeoutS: Double?
        /// `not_latched`, `pose_known`, `inside_workspace`.
        public var preconditions: [String]
        public var arguments: [Argument]

        enum CodingKeys: String, CodingKey {
            case name, action, description, policy, preconditions, arguments
            case timeoutS = "timeout_s"
        }

        public init(name: String, action: String, description: String, policy: String?, timeoutS: Double?, preconditions: [String],
                    arguments: [Argument]) {
            self.name = name
            self.action = action
            self.description = description
            self.policy = policy
            self.timeoutS = timeoutS
            self.preconditions = preconditions
            self.arguments = arguments
        }
    }

    /// How the robot takes goals: over MQTT at all (`planner.goals.mqtt`), and at most one per
    /// `min_interval_ms`. Who may give them is the broker's ACL and `planner.goals.users`, not said here.
    public struct Goals: Codable, Sendable, Equatable {
        public var mqtt: Bool
        public var minIntervalMs: Double

        enum CodingKeys: String, CodingKey {
            case mqtt
            case minIntervalMs = "min_interval_ms"
        }

        public init(mqtt: Bool, minIntervalMs: Double) {
            self.mqtt = mqtt
            self.minIntervalMs = minIntervalMs
        }
    }

    /// This topic's message number (one per connect).
    public var seq: UInt64
    public var tUnixS: Double
    public var robotId: String
    /// The same as `state`'s: a retained vocabulary whose hash differs from the live robot's
    /// `state` is left over from another configuration.
    public var configSha256: String
    public var maxSteps: Int
    public var goals: Goals
    public var abilities: [Ability]
    /// The plan's JSON Schema (draft 2020-12), as back ends are asked to follow it.
    public var planSchema: JSONValue

    enum CodingKeys: String, CodingKey {
        case seq, goals, abilities
        case tUnixS = "t_unix_s"
        case robotId = "robot_id"
        case configSha256 = "config_sha256"
        case maxSteps = "max_steps"
        case planSchema = "plan_schema"
    }

    public init(seq: UInt64 = 0, tUnixS: Double = 0, robotId: String, configSha256: String, maxSteps: Int, goals: Goals,
                abilities: [Ability], planSchema: JSONValue) {
        self.seq = seq
        self.tUnixS = tUnixS
        self.robotId = robotId
        self.configSha256 = configSha256
        self.maxSteps = maxSteps
        self.goals = goals
        self.abilities = abilities
        self.planSchema = planSchema
    }

    /// The vocabulary of `context` (built from `configuration`).
    public init(context: PlanningContext, configuration: RobotConfiguration, configSha256: String) {
        self.init(robotId: configuration.robot.id, configSha256: configSha256, maxSteps: context.settings.maxSteps,
                  goals: Goals(mqtt: RobotDaemon.goalsOverMQTT(configuration), minIntervalMs: configuration.planner.goals.minIntervalMs),
                  abilities: context.catalog.abilities.map(Self.ability), planSchema: context.planSchema)
    }

    static func ability(_ a: ResolvedAbility) -> Ability {
        Ability(name: a.name, action: a.action.rawValue, description: a.description, policy: a.policy, timeoutS: a.timeoutS,
                preconditions: a.preconditions.map(\.rawValue), arguments: a.arguments.map(argument))
    }

    static func argument(_ a: ResolvedArgument) -> Argument {
        var argument = Argument(name: a.name, type: a.spec.kind.rawValue, unit: a.spec.unit, required: a.spec.required,
                                description: a.description)
        switch a.shape {
        case .number(let bounds):
            argument.bounds = Bounds(bounds)
        case .points(let x, let y, let maxCount):
            argument.x = Bounds(x)
            argument.y = Bounds(y)
            argument.maxPoints = maxCount
        }
        return argument
    }

    /// Compact JSON, sorted keys, the keys as spelled above.
    public var encoded: [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        // Finite numbers, strings and containers only (the bounds are finite by construction).
        return (try? Array(encoder.encode(self))) ?? Array("{}".utf8)
    }

    public static func decode(_ bytes: [UInt8]) throws -> AbilitiesPayload {
        try JSONDecoder().decode(AbilitiesPayload.self, from: Data(bytes))
    }
}

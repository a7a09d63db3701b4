/// The telemetry topics under one prefix (default `robotd/<robot-id>/`; docs/mqtt.md).
public struct TelemetryTopics: Sendable, Equatable {
    public let prefix: String

    public init(prefix: String) { self.prefix = prefix }
    public init(robotID: String) { self.init(prefix: "robotd/\(robotID)/") }

    /// `online` / `offline` (retained; `offline` is also the last will).
    public var status: String { prefix + "status" }
    public var state: String { prefix + "state" }
    public var deadlines: String { prefix + "deadlines" }
    public var miss: String { prefix + "deadlines/miss" }
    public var queues: String { prefix + "queues" }
    public var safety: String { prefix + "safety" }
    public var inputs: String { prefix + "inputs" }
    /// The configuration's sensors: their fresh values.
    public var sensors: String { prefix + "sensors" }
    /// Inbound: any message asks for the audit ring on `audit`.
    public var auditRequest: String { prefix + "audit/request" }
    public var audit: String { prefix + "audit" }
    /// The planner: goals, verdicts, plans, progress, planner health (a robot with `abilities`).
    public var plan: String { prefix + "plan" }
    /// The ability vocabulary (a robot with `abilities`): retained, at each connect.
    public var abilities: String { prefix + "abilities" }

    /// Every topic robotd publishes here, relative to the prefix (the schemas' names with `/` as `.`).
    /// (`plan` and `abilities` too, for a robot with `abilities`: `withPlanner`.)
    public static let published = ["status", "state", "deadlines", "deadlines/miss", "queues", "safety", "inputs", "sensors", "audit"]
    public static let withPlanner = published + ["plan", "abilities"]

    public static let statusOnline = "online"
    public static let statusOffline = "offline"
}

/// The program's version, as `state` reports it.
public enum RobotdVersion {
    public static let current = "0.1.0"
}

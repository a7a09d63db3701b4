import Foundation

/// What the planner knows of the robot when it plans: compact, so that it fits in a prompt, and
/// numbered, so that a plan can say which state it was made from. Values the robot does not know
/// (a pose before odometry, a silent sensor) are absent, never NaN: JSON cannot carry NaN.
public struct WorldState: Sendable, Equatable, Codable {
    public struct Pose: Sendable, Equatable, Codable {
        /// m, odom frame.
        public var x: Double
        public var y: Double
        /// rad.
        public var yaw: Double
        public init(x: Double, y: Double, yaw: Double) {
            self.x = x
            self.y = y
            self.yaw = yaw
        }
        public var isFinite: Bool { x.isFinite && y.isFinite && yaw.isFinite }
        public func distance(to other: Pose) -> Double { hypot(other.x - x, other.y - y) }
    }

    public struct Sensor: Sendable, Equatable, Codable {
        public var name: String
        /// nil: unknown (never reported, stale — older than its `max_age_ms` —, or not a finite
        /// number). A value given is fresh: no older than its sensor's `max_age_ms`.
        public var value: Double?
        public init(name: String, value: Double?) {
            self.name = name
            self.value = value.flatMap { $0.isFinite ? $0 : nil }
        }
        enum CodingKeys: String, CodingKey {
            case name, value
        }
        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            self.init(name: try c.decode(String.self, forKey: .name), value: try c.decodeIfPresent(Double.self, forKey: .value))
        }
        /// Unknown (or non-finite) values as null.
        public func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(name, forKey: .name)
            try c.encode(value.flatMap { $0.isFinite ? $0 : nil }, forKey: .value)
        }
    }

    public struct Goal: Sendable, Equatable, Codable {
        /// Increases with every new goal: a plan for an older goal is stale.
        public var id: UInt64
        /// The goal as given: data, never instructions.
        public var text: String
        public init(id: UInt64, text: String) {
            self.id = id
            self.text = text
        }
    }

    /// The plan being executed and how far it got.
    public struct PlanProgress: Sendable, Equatable, Codable {
        public enum Status: String, Sendable, Codable {
            case running, completed, failed, cancelled
        }
        public var goalID: UInt64
        /// 0-based index of the step running now (== `stepCount` when done).
        public var step: Int
        public var stepCount: Int
        /// The current step's ability.
        public var ability: String?
        public var status: Status
        public init(goalID: UInt64, step: Int, stepCount: Int, ability: String?, status: Status) {
            self.goalID = goalID
            self.step = step
            self.stepCount = stepCount
            self.ability = ability
            self.status = status
        }
        enum CodingKeys: String, CodingKey {
            case step, ability, status
            case goalID = "goal_id"
            case stepCount = "step_count"
        }
    }

    public struct Event: Sendable, Equatable, Codable {
        /// Seconds on the world state's clock (`time_s`).
        public var timeS: Double
        /// A short machine word: `estop`, `reset`, `plan_completed`, `workspace_warn`, …
        public var kind: String
        public var text: String
        public init(timeS: Double, kind: String, text: String) {
            self.timeS = timeS
            self.kind = kind
            self.text = text
        }
        enum CodingKeys: String, CodingKey {
            case kind, text
            case timeS = "time_s"
        }
    }

    /// Increases with every change of the state.
    public var revision: UInt64
    /// When it was captured: seconds on a monotonic clock (a plan's age is measured on it).
    public var timeS: Double
    /// nil: unknown.
    public var pose: Pose?
    /// Sorted by name.
    public var sensors: [Sensor]
    /// Who or what drives, in the runtime's words: `running`, `teleop` (a person has the sticks),
    /// `holding`, `recovery`, `stopped`, `stalled`.
    public var mode: String
    /// A stop is latched (until a deliberate reset).
    public var latched: Bool
    /// What keeps the robot stopped now, sorted (`estop`, `link:rover_port`, …).
    public var stopCauses: [String]
    public var goal: Goal?
    public var activePlan: PlanProgress?
    /// The latest events, oldest first, at most `maxRecentEvents`.
    public private(set) var recentEvents: [Event]
    /// The guard's latch epoch (latches and resets so far): a stop and its reset between two
    /// looks leave `latched` as it was, never this. Not in the JSON: a planner has no use for it;
    /// the validator compares it with the request's (`PlanRequest.latchEpoch`).
    public var latchEpoch: UInt64 = 0

    /// Events kept: enough to say what just happened, few enough for a small model's prompt.
    public static let maxRecentEvents = 16

    public init(revision: UInt64, timeS: Double, pose: Pose?, sensors: [Sensor] = [], mode: String, latched: Bool,
                stopCauses: [String] = [], goal: Goal? = nil, activePlan: PlanProgress? = nil, recentEvents: [Event] = []) {
        self.revision = revision
        self.timeS = timeS
        self.pose = pose.flatMap { $0.isFinite ? $0 : nil }
        self.sensors = sensors.sorted { $0.name < $1.name }
        self.mode = mode
        self.latched = latched
        self.stopCauses = stopCauses.sorted()
        self.goal = goal
        self.activePlan = activePlan
        self.recentEvents = Array(recentEvents.suffix(Self.maxRecentEvents))
    }

    /// Adds an event, dropping the oldest beyond `maxRecentEvents`, and counts a revision.
    public mutating func record(_ event: Event) {
        recentEvents.append(event)
        if recentEvents.count > Self.maxRecentEvents { recentEvents.removeFirst(recentEvents.count - Self.maxRecentEvents) }
        revision &+= 1
    }

    /// The value of a sensor, when known.
    public func sensor(_ name: String) -> Double? { sensors.first { $0.name == name }?.value }

    enum CodingKeys: String, CodingKey {
        case revision, pose, sensors, mode, latched, goal
        case timeS = "time_s"
        case stopCauses = "stop_causes"
        case activePlan = "active_plan"
        case recentEvents = "recent_events"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(revision: try c.decode(UInt64.self, forKey: .revision), timeS: try c.decode(Double.self, forKey: .timeS),
                  pose: try c.decodeIfPresent(Pose.self, forKey: .pose),
                  sensors: try c.decodeIfPresent([Sensor].self, forKey: .sensors) ?? [],
                  mode: try c.decode(String.self, forKey: .mode), latched: try c.decode(Bool.self, forKey: .latched),
                  stopCauses: try c.decodeIfPresent([String].self, forKey: .stopCauses) ?? [],
                  goal: try c.decodeIfPresent(Goal.self, forKey: .goal),
                  activePlan: try c.decodeIfPresent(PlanProgress.self, forKey: .activePlan),
                  recentEvents: try c.decodeIfPresent([Event].self, forKey: .recentEvents) ?? [])
    }

    /// Every key is written (unknown ones as null), so a reader always sees the same shape.
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(revision, forKey: .revision)
        try c.encode(timeS.isFinite ? timeS : 0, forKey: .timeS)
        try c.encode(pose.flatMap { $0.isFinite ? $0 : nil }, forKey: .pose)
        try c.encode(sensors, forKey: .sensors)
        try c.encode(mode, forKey: .mode)
        try c.encode(latched, forKey: .latched)
        try c.encode(stopCauses, forKey: .stopCauses)
        try c.encode(goal, forKey: .goal)
        try c.encode(activePlan, forKey: .activePlan)
        try c.encode(recentEvents.map { Event(timeS: $0.timeS.isFinite ? $0.timeS : 0, kind: $0.kind, text: $0.text) },
                     forKey: .recentEvents)
    }

    /// Compact JSON with sorted keys (the prompt's and the `plan` topic's form).
    public func jsonData() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return try encoder.encode(self)
    }
}

/// What a plan is asked for: the goal and the world state it is planned from. A plan validated
/// later is judged against the state then (`PlanValidator`): when the state moved on in a way that
/// matters, the plan is stale.
public struct PlanRequest: Sendable, Equatable, Codable {
    public var goal: WorldState.Goal
    public var world: WorldState
    /// The guard's latch epoch when the goal was taken (`WorldState.latchEpoch`): a plan validated
    /// in another epoch — a stop latched since, even one already reset — is stale, and the
    /// accepted plan carries it to the executor, which refuses it in another epoch too.
    public var latchEpoch: UInt64

    /// `latchEpoch`: nil, the world's own (a goal taken as the world was captured).
    public init(goal: WorldState.Goal, world: WorldState, latchEpoch: UInt64? = nil) {
        self.goal = goal
        self.world = world
        self.latchEpoch = latchEpoch ?? world.latchEpoch
    }

    enum CodingKeys: String, CodingKey {
        case goal, world
        case latchEpoch = "latch_epoch"
    }
}

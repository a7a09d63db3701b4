/// One robot or rig, as its YAML file describes it (docs/configuration.md). Decoded only after the
/// validator has checked the file's node tree (every problem at once, with line and column), so a
/// decoding error here means the validator missed something: it is reported, never a crash.
///
/// Units are SI; durations carry their unit in the key (`_ms`, `_s`). Names follow ros2_control
/// where it has one (`has_velocity_limits`, `max_velocity`, …).
public struct RobotConfiguration: Sendable, Equatable, Codable {
    public var robot: RobotIdentity
    public var scheduler: SchedulerSettings = SchedulerSettings()
    public var safety: SafetySettings = SafetySettings()
    public var mqtt: MQTTSettings?
    public var inputs: [InputSettings] = []
    public var sensors: [SensorSettings] = []
    public var odometry: OdometrySettings?
    public var channels: [ChannelSettings]
    public var workspace: WorkspaceSettings?
    /// `estop: none` must be written out: a robot without an e-stop input says so.
    public var estop: EStopSettings
    public var policies: [PolicySettings] = []
    public var actuators: [ActuatorSettings] = []
    /// The action vocabulary plans may use (docs/planner.md).
    public var abilities: [AbilitySettings] = []
    /// How plans are judged.
    public var planner: PlannerSettings = PlannerSettings()
    /// The planner's episodic memory; nil: none (docs/planner.md).
    public var memory: MemorySettings?

    public init(robot: RobotIdentity, channels: [ChannelSettings], estop: EStopSettings) {
        self.robot = robot
        self.channels = channels
        self.estop = estop
    }

    enum CodingKeys: String, CodingKey {
        case robot, scheduler, safety, mqtt, inputs, sensors, odometry, channels, workspace, estop, policies, actuators, abilities, planner
        case memory
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        robot = try c.decode(RobotIdentity.self, forKey: .robot)
        scheduler = try c.decodeIfPresent(SchedulerSettings.self, forKey: .scheduler) ?? SchedulerSettings()
        safety = try c.decodeIfPresent(SafetySettings.self, forKey: .safety) ?? SafetySettings()
        mqtt = try c.decodeIfPresent(MQTTSettings.self, forKey: .mqtt)
        inputs = try c.decodeIfPresent([InputSettings].self, forKey: .inputs) ?? []
        sensors = try c.decodeIfPresent([SensorSettings].self, forKey: .sensors) ?? []
        odometry = try c.decodeIfPresent(OdometrySettings.self, forKey: .odometry)
        channels = try c.decode([ChannelSettings].self, forKey: .channels)
        workspace = try c.decodeIfPresent(WorkspaceSettings.self, forKey: .workspace)
        estop = try c.decode(EStopSettings.self, forKey: .estop)
        policies = try c.decodeIfPresent([PolicySettings].self, forKey: .policies) ?? []
        actuators = try c.decodeIfPresent([ActuatorSettings].self, forKey: .actuators) ?? []
        abilities = try c.decodeIfPresent([AbilitySettings].self, forKey: .abilities) ?? []
        planner = try c.decodeIfPresent(PlannerSettings.self, forKey: .planner) ?? PlannerSettings()
        memory = try c.decodeIfPresent(MemorySettings.self, forKey: .memory)
    }
}

public struct RobotIdentity: Sendable, Equatable, Codable {
    /// Letters, digits, `-` and `_` (it becomes part of MQTT topics and file names).
    public var id: String
    public var description: String?
    public init(id: String, description: String? = nil) {
        self.id = id
        self.description = description
    }
}

/// The real-time setup of the dispatch thread and the input readers.
public struct SchedulerSettings: Sendable, Equatable, Codable {
    /// SCHED_FIFO priority of the dispatch thread, 1…99; 0: none. Default: 80 as root, none otherwise.
    public var priority: Int?
    public var dispatchCPU: Int?
    /// A handler running longer than this puts every actuator in its safe state (the supervisor).
    /// Default: 3 periods of the fastest critical task, at least 10 ms.
    public var supervisorBudgetMs: Double?
    /// SCHED_FIFO priorities of the reader threads (`estop`: e-stop devices, `sensors`: the rest).
    /// Default: 2 and 3 below the dispatch thread.
    public var inputPriorities: InputPriorities?
    public var lockMemory: Bool = true

    public struct InputPriorities: Sendable, Equatable, Codable {
        public var estop: Int?
        public var sensors: Int?
    }

    public init() {}

    enum CodingKeys: String, CodingKey {
        case priority
        case dispatchCPU = "dispatch_cpu"
        case supervisorBudgetMs = "supervisor_budget_ms"
        case inputPriorities = "input_priorities"
        case lockMemory = "lock_memory"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        priority = try c.decodeIfPresent(Int.self, forKey: .priority)
        dispatchCPU = try c.decodeIfPresent(Int.self, forKey: .dispatchCPU)
        supervisorBudgetMs = try c.decodeIfPresent(Double.self, forKey: .supervisorBudgetMs)
        inputPriorities = try c.decodeIfPresent(InputPriorities.self, forKey: .inputPriorities)
        lockMemory = try c.decodeIfPresent(Bool.self, forKey: .lockMemory) ?? true
    }
}

/// The guard's own settings (beyond channels, sensors, workspace and e-stop).
public struct SafetySettings: Sendable, Equatable, Codable {
    /// Start latched (`power-on`): nothing moves until a deliberate reset. Default true; the
    /// bundled simulator's examples say false.
    public var startLatched: Bool = true
    /// A required sensor silent this long after start is a stop; before, motion is held.
    public var startupTimeoutMs: Double = 2000
    /// The guard's own periodic task (levels, watchdogs, stop ramps).
    public var guardPeriodMs: Double = 10
    /// Consecutive misses of a critical task that make a deadline fault (a stop).
    public var criticalMisses: Int = 5

    public init() {}

    enum CodingKeys: String, CodingKey {
        case startLatched = "start_latched"
        case startupTimeoutMs = "startup_timeout_ms"
        case guardPeriodMs = "guard_period_ms"
        case criticalMisses = "critical_misses"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        startLatched = try c.decodeIfPresent(Bool.self, forKey: .startLatched) ?? true
        startupTimeoutMs = try c.decodeIfPresent(Double.self, forKey: .startupTimeoutMs) ?? 2000
        guardPeriodMs = try c.decodeIfPresent(Double.self, forKey: .guardPeriodMs) ?? 10
        criticalMisses = try c.decodeIfPresent(Int.self, forKey: .criticalMisses) ?? 5
    }
}

/// The broker robotd connects to (inputs and actuators of kind `mqtt`, the remote stop).
public struct MQTTSettings: Sendable, Equatable, Codable {
    /// HOST:PORT.
    public var broker: String
    public var clientID: String?
    public var username: String?
    /// The password is never written in the file: the name of an environment variable, or a file.
    public var passwordEnv: String?
    public var passwordFile: String?
    /// TLS: the CA certificate file (TLS is on when set).
    public var caFile: String?
    public var keepaliveS: Double = 10
    /// How long an `mqtt` actuator's command may stay unconfirmed while connected (QoS 0: not
    /// written; QoS 1: not acknowledged) before its channel is failed (`stalled`); nil: three
    /// keep-alive intervals.
    public var commandConfirmationS: Double?
    /// What robotd publishes about itself (defaults when absent; docs/mqtt.md).
    public var telemetry: TelemetrySettings?
    /// Every robotd topic (inbound and telemetry) starts with this; nil: `robotd/<robot id>/`
    /// (`RobotConfiguration.topicPrefix`).
    public var prefix: String?
    /// Home Assistant discovery; nil: off (docs/mqtt.md).
    public var homeAssistant: HomeAssistantSettings?

    public init(broker: String) { self.broker = broker }

    enum CodingKeys: String, CodingKey {
        case broker
        case clientID = "client_id"
        case username
        case passwordEnv = "password_env"
        case passwordFile = "password_file"
        case caFile = "ca_file"
        case keepaliveS = "keepalive_s"
        case commandConfirmationS = "command_confirmation_s"
        case telemetry
        case prefix
        case homeAssistant = "home_assistant"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        broker = try c.decode(String.self, forKey: .broker)
        clientID = try c.decodeIfPresent(String.self, forKey: .clientID)
        username = try c.decodeIfPresent(String.self, forKey: .username)
        passwordEnv = try c.decodeIfPresent(String.self, forKey: .passwordEnv)
        passwordFile = try c.decodeIfPresent(String.self, forKey: .passwordFile)
        caFile = try c.decodeIfPresent(String.self, forKey: .caFile)
        keepaliveS = try c.decodeIfPresent(Double.self, forKey: .keepaliveS) ?? 10
        commandConfirmationS = try c.decodeIfPresent(Double.self, forKey: .commandConfirmationS)
        telemetry = try c.decodeIfPresent(TelemetrySettings.self, forKey: .telemetry)
        prefix = try c.decodeIfPresent(String.self, forKey: .prefix)
        homeAssistant = try HomeAssistantSettings.decode(from: c, forKey: .homeAssistant)
    }
}

/// How an input's events queue for the dispatch thread.
public struct QueueSettings: Sendable, Equatable, Codable {
    public var capacity: Int
    /// `reject`, `drop_oldest`, `keep_latest_per_key`.
    public var overflow: String
    public init(capacity: Int, overflow: String) {
        self.capacity = capacity
        self.overflow = overflow
    }
}

/// The keys every input, policy and actuator has, and the rest: the kind's own settings, kept as a
/// tree for the kind to decode (it was checked against the kind's `KindSpec`).
public protocol KindedSettings {
    static var commonKeys: Set<String> { get }
}

public struct InputSettings: Sendable, Equatable, Codable, KindedSettings {
    public var name: String
    /// `serial`, `evdev`, `mqtt` (the input registry's kinds).
    public var kind: String
    public var queue: QueueSettings?
    /// Dispatch class of its events: `critical`, `high`, `normal`, `low`.
    public var priority: String?
    /// Relative deadline of its events after arrival.
    public var deadlineMs: Double?
    /// The kind's own keys (path, codec, feeds, axes…).
    public var settings: ConfigValue

    public static let commonKeys: Set<String> = ["name", "kind", "queue", "priority", "deadline_ms"]

    public init(name: String, kind: String, settings: ConfigValue = .emptyMap) {
        self.name = name
        self.kind = kind
        self.settings = settings
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: AnyKey.self)
        name = try c.decode(String.self, forKey: AnyKey("name"))
        kind = try c.decode(String.self, forKey: AnyKey("kind"))
        queue = try c.decodeIfPresent(QueueSettings.self, forKey: AnyKey("queue"))
        priority = try c.decodeIfPresent(String.self, forKey: AnyKey("priority"))
        deadlineMs = try c.decodeIfPresent(Double.self, forKey: AnyKey("deadline_ms"))
        settings = try Self.rest(of: c)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: AnyKey.self)
        try c.encode(name, forKey: AnyKey("name"))
        try c.encode(kind, forKey: AnyKey("kind"))
        try c.encodeIfPresent(queue, forKey: AnyKey("queue"))
        try c.encodeIfPresent(priority, forKey: AnyKey("priority"))
        try c.encodeIfPresent(deadlineMs, forKey: AnyKey("deadline_ms"))
        try Self.encodeRest(settings, into: &c)
    }
}

public struct PolicySettings: Sendable, Equatable, Codable, KindedSettings {
    public var name: String
    /// `teleop`, `obstacle_stop`, `wander`, `waypoints`, `thermostat` (the policy registry's kinds).
    public var kind: String
    /// Required for policies that propose commands; a filter (`obstacle_stop`) runs inside the
    /// winning policy's step and has none.
    public var periodMs: Double?
    /// Default: the period.
    public var deadlineMs: Double?
    /// A critical task's miss streak is a deadline fault (a stop).
    public var critical: Bool = false
    /// The channels it commands (declared under `channels`).
    public var channels: [String] = []
    /// Arbitration between policies commanding the same channels (twist_mux's idiom): the highest
    /// priority with a fresh output wins. `obstacle_stop` is a filter and has none.
    public var priority: Int?
    /// An output older than this does not win arbitration.
    public var timeoutMs: Double?
    public var settings: ConfigValue

    public static let commonKeys: Set<String> = ["name", "kind", "period_ms", "deadline_ms", "critical", "channels", "priority", "timeout_ms"]

    public init(name: String, kind: String, periodMs: Double?, settings: ConfigValue = .emptyMap) {
        self.name = name
        self.kind = kind
        self.periodMs = periodMs
        self.settings = settings
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: AnyKey.self)
        name = try c.decode(String.self, forKey: AnyKey("name"))
        kind = try c.decode(String.self, forKey: AnyKey("kind"))
        periodMs = try c.decodeIfPresent(Double.self, forKey: AnyKey("period_ms"))
        deadlineMs = try c.decodeIfPresent(Double.self, forKey: AnyKey("deadline_ms"))
        critical = try c.decodeIfPresent(Bool.self, forKey: AnyKey("critical")) ?? false
        channels = try c.decodeIfPresent([String].self, forKey: AnyKey("channels")) ?? []
        priority = try c.decodeIfPresent(Int.self, forKey: AnyKey("priority"))
        timeoutMs = try c.decodeIfPresent(Double.self, forKey: AnyKey("timeout_ms"))
        settings = try Self.rest(of: c)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: AnyKey.self)
        try c.encode(name, forKey: AnyKey("name"))
        try c.encode(kind, forKey: AnyKey("kind"))
        try c.encodeIfPresent(periodMs, forKey: AnyKey("period_ms"))
        try c.encodeIfPresent(deadlineMs, forKey: AnyKey("deadline_ms"))
        try c.encode(critical, forKey: AnyKey("critical"))
        try c.encode(channels, forKey: AnyKey("channels"))
        try c.encodeIfPresent(priority, forKey: AnyKey("priority"))
        try c.encodeIfPresent(timeoutMs, forKey: AnyKey("timeout_ms"))
        try Self.encodeRest(settings, into: &c)
    }
}

public struct ActuatorSettings: Sendable, Equatable, Codable, KindedSettings {
    public var name: String
    /// `serial_frames`, `mqtt`, `simulator` (the actuator registry's kinds).
    public var kind: String
    /// The kind's own keys (path, channel mapping, topics…).
    public var settings: ConfigValue

    public static let commonKeys: Set<String> = ["name", "kind"]

    public init(name: String, kind: String, settings: ConfigValue = .emptyMap) {
        self.name = name
        self.kind = kind
        self.settings = settings
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: AnyKey.self)
        name = try c.decode(String.self, forKey: AnyKey("name"))
        kind = try c.decode(String.self, forKey: AnyKey("kind"))
        settings = try Self.rest(of: c)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: AnyKey.self)
        try c.encode(name, forKey: AnyKey("name"))
        try c.encode(kind, forKey: AnyKey("kind"))
        try Self.encodeRest(settings, into: &c)
    }
}

extension KindedSettings {
    static func rest(of c: KeyedDecodingContainer<AnyKey>) throws -> ConfigValue {
        .map(try c.allKeys.filter { !commonKeys.contains($0.stringValue) }
            .map { ConfigValue.Entry(key: $0.stringValue, value: try c.decode(ConfigValue.self, forKey: $0)) })
    }

    static func encodeRest(_ settings: ConfigValue, into c: inout KeyedEncodingContainer<AnyKey>) throws {
        guard case .map(let entries) = settings else { return }
        for e in entries { try c.encode(e.value, forKey: AnyKey(e.key)) }
    }
}

/// The robot's action vocabulary for planning (docs/planner.md): each ability a plan may call, what
/// it does, the arguments it takes and their bounds, the policy that executes it and when it may
/// run. A plan names abilities only, never a channel.

/// What an ability does. The action fixes its arguments (names, types, units) and the policy kind
/// that can execute it: an ability is a named, bounded, described use of one action.
public enum AbilityAction: String, Sendable, Codable, CaseIterable {
    /// Drive to one point (a `waypoints` policy).
    case goto
    /// Drive through points in order (a `waypoints` policy).
    case patrol
    /// Change a thermostat's setpoint (a `thermostat` policy).
    case setTemperature = "set_temperature"
    /// Hold a temperature for some minutes (a `thermostat` policy).
    case hold
    /// Stand still: the end of what a plan commands. Built in.
    case stop
    /// Do nothing for some seconds. Built in.
    case wait

    /// The policy kinds that can execute it; empty for the built-in ones.
    public var policyKinds: [String] {
        switch self {
        case .goto, .patrol: ["waypoints"]
        case .setTemperature, .hold: ["thermostat"]
        case .stop, .wait: []
        }
    }

    /// Executed by robotd itself, not by a policy.
    public var isBuiltIn: Bool { policyKinds.isEmpty }

    /// It moves the robot: its points need a workspace, and a step that stops getting closer must
    /// be noticed (`no_progress`).
    public var moves: Bool { self == .goto || self == .patrol }

    /// What a plan's reader (a model) is told when the configuration gives no description.
    public var summary: String {
        switch self {
        case .goto: "drive to the point (x, y)"
        case .patrol: "drive through the points in order"
        case .setTemperature: "set the thermostat to a temperature"
        case .hold: "hold a temperature for some minutes"
        case .stop: "stand still"
        case .wait: "wait some seconds"
        }
    }

    public var arguments: [AbilityArgument] {
        let coordinate = -Double.greatestFiniteMagnitude...Double.greatestFiniteMagnitude
        let speed = AbilityArgument("speed", .number, unit: "m/s", required: false, range: 0.01...10, role: .speed,
                                    summary: "forward speed (default: the policy's)")
        switch self {
        case .goto:
            return [AbilityArgument("x", .number, unit: "m", range: coordinate, role: .x, summary: "target x, odom frame"),
                    AbilityArgument("y", .number, unit: "m", range: coordinate, role: .y, summary: "target y, odom frame"),
                    speed]
        case .patrol:
            return [AbilityArgument("points", .points, unit: "m", range: coordinate, role: .points,
                                    summary: "the points to drive through, in order: [{x, y}, …], odom frame"),
                    speed]
        case .setTemperature:
            return [AbilityArgument("temperature", .number, unit: "°C", range: -40...150, role: .temperature, summary: "the setpoint")]
        case .hold:
            return [AbilityArgument("temperature", .number, unit: "°C", range: -40...150, role: .temperature, summary: "the setpoint"),
                    AbilityArgument("minutes", .number, unit: "min", range: 0.1...1440, role: .duration, summary: "how long to hold it")]
        case .stop:
            return []
        case .wait:
            return [AbilityArgument("seconds", .number, unit: "s", range: 0.1...3600, role: .duration, summary: "how long to wait")]
        }
    }

    public func argument(named name: String) -> AbilityArgument? { arguments.first { $0.name == name } }
}

/// One argument an action takes: its name in a plan, its type and unit, and the widest range the
/// action itself accepts (the configuration, the guard's limits and the workspace narrow it).
public struct AbilityArgument: Sendable, Equatable {
    public enum Kind: String, Sendable, Equatable {
        /// A finite number.
        case number
        /// A list of points `{x, y}` (m).
        case points
    }

    /// What the value means, which decides which other limits bound it.
    public enum Role: String, Sendable, Equatable {
        /// Coordinates: the workspace bounds them.
        case x, y, points
        /// A linear speed (m/s): the wheels' limits and the planner envelope bound it.
        case speed
        /// A thermostat setpoint (°C): the sensor's valid range and the heater's interlock bound it.
        case temperature
        /// A duration: only the ability's own bounds.
        case duration
    }

    public var name: String
    public var kind: Kind
    public var unit: String
    public var required: Bool
    /// For a number: its range; for points: each coordinate's.
    public var range: ClosedRange<Double>
    public var role: Role
    public var summary: String

    public init(_ name: String, _ kind: Kind, unit: String, required: Bool = true, range: ClosedRange<Double>, role: Role,
                summary: String) {
        self.name = name
        self.kind = kind
        self.unit = unit
        self.required = required
        self.range = range
        self.role = role
        self.summary = summary
    }

    /// The most points a `points` argument takes unless `max_points` says otherwise.
    public static let defaultMaxPoints = 16
    public static let maxPointsRange = 1...1000
}

/// When a step may run; checked against the world state a plan is validated with.
public enum AbilityPrecondition: String, Sendable, Codable, CaseIterable {
    /// No latched stop (e-stop, a stop cause, the power-on latch).
    case notLatched = "not_latched"
    /// The pose is known and inside the workspace.
    case insideWorkspace = "inside_workspace"
    /// The pose is known (finite).
    case poseKnown = "pose_known"
}

/// `abilities[]`: one ability of the vocabulary.
public struct AbilitySettings: Sendable, Equatable, Codable {
    /// What a plan calls it: lower-case letters, digits and `_`, starting with a letter.
    public var name: String
    /// Default: the action of the same name.
    public var action: AbilityAction
    /// For the model; nil: the action's summary.
    public var description: String?
    /// The policy that executes it (by name); nil for the built-in actions.
    public var policy: String?
    /// Narrower bounds and descriptions per argument, by the argument's name.
    public var arguments: [String: AbilityArgumentSettings] = [:]
    /// The step's time limit (s); required for the actions a policy executes.
    public var timeoutS: Double?
    /// nil: none (`no_progress: none` written out, or an action without it).
    public var noProgress: NoProgressSettings?
    public var preconditions: [AbilityPrecondition] = []

    /// `timeout_s` and `no_progress.time_s`: above 0, at most a day (s). Every duration the
    /// runtime makes of them then fits its clock.
    public static let timeRangeS = Double.leastNonzeroMagnitude...86_400

    public init(name: String, action: AbilityAction, policy: String? = nil) {
        self.name = name
        self.action = action
        self.policy = policy
    }

    enum CodingKeys: String, CodingKey {
        case name, action, description, policy, arguments, preconditions
        case timeoutS = "timeout_s"
        case noProgress = "no_progress"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        name = try c.decode(String.self, forKey: .name)
        if let action = try c.decodeIfPresent(AbilityAction.self, forKey: .action) {
            self.action = action
        } else if let action = AbilityAction(rawValue: name) {
            self.action = action
        } else {
            throw DecodingError.dataCorrupted(.init(codingPath: c.codingPath + [CodingKeys.name],
                                                    debugDescription: "`\(name)` is not an action and no `action` is given"))
        }
        description = try c.decodeIfPresent(String.self, forKey: .description)
        policy = try c.decodeIfPresent(String.self, forKey: .policy)
        arguments = try c.decodeIfPresent([String: AbilityArgumentSettings].self, forKey: .arguments) ?? [:]
        timeoutS = try c.decodeIfPresent(Double.self, forKey: .timeoutS)
        // `no_progress: none` is the explicit choice of none (check warns about it on motion).
        if (try? c.decode(String.self, forKey: .noProgress)) == "none" {
            noProgress = nil
        } else {
            noProgress = try c.decodeIfPresent(NoProgressSettings.self, forKey: .noProgress)
        }
        preconditions = try c.decodeIfPresent([AbilityPrecondition].self, forKey: .preconditions) ?? []
    }
}

/// `abilities[].arguments.NAME`: what the configuration narrows or says about one argument.
public struct AbilityArgumentSettings: Sendable, Equatable, Codable {
    /// Numbers only.
    public var min: Double?
    public var max: Double?
    public var description: String?
    /// Points only: the most points a step may give.
    public var maxPoints: Int?

    public init(min: Double? = nil, max: Double? = nil, description: String? = nil, maxPoints: Int? = nil) {
        self.min = min
        self.max = max
        self.description = description
        self.maxPoints = maxPoints
    }

    enum CodingKeys: String, CodingKey {
        case min, max, description
        case maxPoints = "max_points"
    }
}

/// `abilities[].no_progress`: a step whose remaining distance (m to the target, or °C to the
/// setpoint) has not shrunk by `min_progress` within `time_s` has stopped making progress.
public struct NoProgressSettings: Sendable, Equatable, Codable {
    public var minProgress: Double
    public var timeS: Double

    public init(minProgress: Double, timeS: Double) {
        self.minProgress = minProgress
        self.timeS = timeS
    }

    enum CodingKeys: String, CodingKey {
        case minProgress = "min_progress"
        case timeS = "time_s"
    }
}

/// `planner`: how plans are judged. Every key has a default.
public struct PlannerSettings: Sendable, Equatable, Codable {
    /// A plan with more steps is refused.
    public var maxSteps: Int = 8
    /// A plan validated this long after its request is stale (s).
    public var maxPlanAgeS: Double = 30
    /// A plan is stale when the pose moved more than this since its request (m).
    public var maxPoseDrift: Double = 0.5
    /// How many times a rejected plan's reasons go back to the same back end before its answer
    /// counts as failed (`PlanFeedback`).
    public var rejectionRetries: Int = 2
    /// Points of a plan must be at least this far inside the workspace's edge (m); nil: the
    /// workspace's `warn_margin`.
    public var clearance: Double?
    /// The whole request's time, over every back end (ms): a back end whose deadline is longer than
    /// the time left is skipped.
    public var budgetMs: Double = 30_000
    /// The built-in planner answers after the configured back ends (it is the only one without them).
    public var builtin: Bool = true
    /// Language-model servers asked for plans, in order (docs/planner-backends.md).
    public var backends: [PlannerBackendSettings] = []
    /// Where goals come from and how often they are taken.
    public var goals = GoalSettings()
    /// Requests to the back ends at once: a new goal cancels the old request, and waits for it to
    /// end while this many are still winding down.
    public var maxRequestsInFlight: Int = 1

    public init() {}

    enum CodingKeys: String, CodingKey {
        case clearance, builtin, backends, goals
        case maxSteps = "max_steps"
        case maxPlanAgeS = "max_plan_age_s"
        case maxPoseDrift = "max_pose_drift"
        case rejectionRetries = "rejection_retries"
        case budgetMs = "budget_ms"
        case maxRequestsInFlight = "max_requests_in_flight"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = PlannerSettings()
        maxSteps = try c.decodeIfPresent(Int.self, forKey: .maxSteps) ?? d.maxSteps
        maxPlanAgeS = try c.decodeIfPresent(Double.self, forKey: .maxPlanAgeS) ?? d.maxPlanAgeS
        maxPoseDrift = try c.decodeIfPresent(Double.self, forKey: .maxPoseDrift) ?? d.maxPoseDrift
        rejectionRetries = try c.decodeIfPresent(Int.self, forKey: .rejectionRetries) ?? d.rejectionRetries
        clearance = try c.decodeIfPresent(Double.self, forKey: .clearance)
        budgetMs = try c.decodeIfPresent(Double.self, forKey: .budgetMs) ?? d.budgetMs
        builtin = try c.decodeIfPresent(Bool.self, forKey: .builtin) ?? d.builtin
        backends = try c.decodeIfPresent([PlannerBackendSettings].self, forKey: .backends) ?? []
        goals = try c.decodeIfPresent(GoalSettings.self, forKey: .goals) ?? GoalSettings()
        maxRequestsInFlight = try c.decodeIfPresent(Int.self, forKey: .maxRequestsInFlight) ?? d.maxRequestsInFlight
    }

    /// The limits of `max_steps` and `rejection_retries` (the schema's and the decoder's).
    public static let maxStepsRange = 1...100
    public static let rejectionRetriesRange = 0...10
    public static let maxRequestsInFlightRange = 1...8
    /// `budget_ms` and a back end's `deadline_ms`: above 0, at most an hour. A planner that has not
    /// answered in an hour will not; and every duration the runtime makes of them fits its clock.
    public static let requestTimeRangeMs = Double.leastNonzeroMagnitude...3_600_000
}

/// `planner.goals`: where goals come from and how often one is taken.
public struct GoalSettings: Sendable, Equatable, Codable {
    /// Subscribe to `<prefix>goal/<user>` (docs/mqtt.md, "Inbound topics and security").
    public var mqtt = false
    /// The MQTT users whose goals are acted on (the topic's last level, tied to the login by the
    /// broker's ACL); anyone else's are refused and recorded.
    public var users: [String] = []
    /// A goal within this long after the last one taken is refused (ms).
    public var minIntervalMs: Double = 1000
    /// A goal the robot is given at start.
    public var initial: String?

    public init() {}

    enum CodingKeys: String, CodingKey {
        case mqtt, users, initial
        case minIntervalMs = "min_interval_ms"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = GoalSettings()
        mqtt = try c.decodeIfPresent(Bool.self, forKey: .mqtt) ?? d.mqtt
        users = try c.decodeIfPresent([String].self, forKey: .users) ?? d.users
        minIntervalMs = try c.decodeIfPresent(Double.self, forKey: .minIntervalMs) ?? d.minIntervalMs
        initial = try c.decodeIfPresent(String.self, forKey: .initial)
    }

    /// The longest goal taken (characters): a goal is a sentence, not a document.
    public static let maxLength = 500
    /// `min_interval_ms`: at most an hour.
    public static let minIntervalRangeMs = 0.0...3_600_000
}

/// `planner.backends[]`: one OpenAI-compatible chat-completions server (docs/planner-backends.md).
public struct PlannerBackendSettings: Sendable, Equatable, Codable {
    public var name: String
    /// `openai`: the only kind so far (chat completions).
    public var kind: String = "openai"
    /// e.g. `http://127.0.0.1:8080/v1`; requests go to `<base_url>/chat/completions`.
    public var baseURL: String
    public var model: String
    /// The environment variable holding the API key (never the key itself in the file).
    public var apiKeyEnv: String?
    /// A file holding the API key (one line).
    public var apiKeyFile: String?
    /// `json_schema` (OpenAI, vLLM, Ollama, llama.cpp's server), `json_object_schema`
    /// (llama-cpp-python's server), `none`.
    public var dialect: String = "json_schema"
    /// One request's total time (ms).
    public var deadlineMs: Double = 10_000
    public var maxResponseBytes: Int = 256 * 1024
    /// The goal kinds (actions) it serves; nil: every goal.
    public var goalKinds: [String]?
    public var breaker = BreakerSettings()

    public init(name: String, baseURL: String, model: String) {
        self.name = name
        self.baseURL = baseURL
        self.model = model
    }

    /// `breaker`: the circuit breaker of one back end.
    public struct BreakerSettings: Sendable, Equatable, Codable {
        public var failureThreshold: Int = 3
        public var coolDownMs: Double = 30_000
        public init() {}
        enum CodingKeys: String, CodingKey {
            case failureThreshold = "failure_threshold"
            case coolDownMs = "cool_down_ms"
        }
        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            failureThreshold = try c.decodeIfPresent(Int.self, forKey: .failureThreshold) ?? 3
            coolDownMs = try c.decodeIfPresent(Double.self, forKey: .coolDownMs) ?? 30_000
        }
        /// `cool_down_ms`: above 0, at most a day.
        public static let coolDownRangeMs = Double.leastNonzeroMagnitude...86_400_000
    }

    enum CodingKeys: String, CodingKey {
        case name, kind, model, dialect, breaker
        case baseURL = "base_url"
        case apiKeyEnv = "api_key_env"
        case apiKeyFile = "api_key_file"
        case deadlineMs = "deadline_ms"
        case maxResponseBytes = "max_response_bytes"
        case goalKinds = "goal_kinds"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        name = try c.decode(String.self, forKey: .name)
        kind = try c.decodeIfPresent(String.self, forKey: .kind) ?? "openai"
        baseURL = try c.decode(String.self, forKey: .baseURL)
        model = try c.decode(String.self, forKey: .model)
        apiKeyEnv = try c.decodeIfPresent(String.self, forKey: .apiKeyEnv)
        apiKeyFile = try c.decodeIfPresent(String.self, forKey: .apiKeyFile)
        dialect = try c.decodeIfPresent(String.self, forKey: .dialect) ?? "json_schema"
        deadlineMs = try c.decodeIfPresent(Double.self, forKey: .deadlineMs) ?? 10_000
        maxResponseBytes = try c.decodeIfPresent(Int.self, forKey: .maxResponseBytes) ?? 256 * 1024
        goalKinds = try c.decodeIfPresent([String].self, forKey: .goalKinds)
        breaker = try c.decodeIfPresent(BreakerSettings.self, forKey: .breaker) ?? BreakerSettings()
    }

    public static let dialects = ["json_schema", "json_object_schema", "none"]
    /// The name the built-in planner answers under: no configured back end may take it.
    public static let builtinName = "builtin"
}

extension ConfigurationSchema {
    /// `abilities[]`.
    public static let ability: [FieldSpec] = [
        FieldSpec("name", .string, required: true, help: "what a plan calls it: lower-case letters, digits and _"),
        FieldSpec("action", .oneOf(AbilityAction.allCases.map(\.rawValue)), help: "what it does (default: its name)"),
        FieldSpec("description", .string, help: "what the model is told it does (default: the action's)"),
        FieldSpec("policy", .string,
                  help: "the policy that executes it: `waypoints` for goto and patrol, `thermostat` for set_temperature and hold; none for stop and wait"),
        FieldSpec("arguments", .dictionary(.object(abilityArgument)), help: "per argument: narrower bounds, a description"),
        FieldSpec("timeout_s", .number(AbilitySettings.timeRangeS),
                  help: "the step's time limit (s); required for the actions a policy executes"),
        FieldSpec("no_progress", .either([.word("none"), .object([
            FieldSpec("min_progress", .positive, required: true, help: "m toward the target, or °C toward the setpoint"),
            FieldSpec("time_s", .number(AbilitySettings.timeRangeS), required: true, help: "within this long (s)"),
        ])]), help: "a step that stops getting closer; required on goto and patrol unless `none` is written out"),
        FieldSpec("preconditions", .list(.oneOf(AbilityPrecondition.allCases.map(\.rawValue))),
                  help: "what must hold for its steps to be accepted"),
    ]

    /// `abilities[].arguments.NAME`.
    public static let abilityArgument: [FieldSpec] = [
        FieldSpec("min", .number(), help: "numbers: the smallest value a plan may give"),
        FieldSpec("max", .number(), help: "numbers: the largest value a plan may give"),
        FieldSpec("description", .string, help: "what the model is told about it"),
        FieldSpec("max_points", .integer(AbilityArgument.maxPointsRange),
                  help: "lists of points: the most a step may give (default \(AbilityArgument.defaultMaxPoints))"),
    ]

    /// `planner`.
    public static let planner: [FieldSpec] = [
        FieldSpec("max_steps", .integer(PlannerSettings.maxStepsRange), help: "a plan with more steps is refused (default 8)"),
        FieldSpec("max_plan_age_s", .positive, help: "a plan validated this long after its request is stale (default 30)"),
        FieldSpec("max_pose_drift", .positive, help: "a plan is stale when the pose moved more than this since its request (m, default 0.5)"),
        FieldSpec("rejection_retries", .integer(PlannerSettings.rejectionRetriesRange),
                  help: "times a rejected plan's reasons go back to the same back end (default 2)"),
        FieldSpec("clearance", .nonNegative, help: "a plan's points at least this far inside the workspace's edge (m, default: its warn_margin)"),
        FieldSpec("budget_ms", .number(PlannerSettings.requestTimeRangeMs),
                  help: "a request's whole time over every back end (ms, default 30000)"),
        FieldSpec("builtin", .bool, help: "the built-in planner answers after the back ends (default true)"),
        FieldSpec("backends", .list(.object(plannerBackend)), help: "language-model servers asked for plans, in order (docs/planner-backends.md)"),
        FieldSpec("goals", .object(plannerGoals), help: "where goals come from and how often one is taken"),
        FieldSpec("max_requests_in_flight", .integer(PlannerSettings.maxRequestsInFlightRange),
                  help: "requests to the back ends at once (default 1)"),
    ]

    /// `planner.goals`.
    public static let plannerGoals: [FieldSpec] = [
        FieldSpec("mqtt", .bool, help: "subscribe to `<prefix>goal/<user>` (default false)"),
        FieldSpec("users", .list(.string), help: "MQTT users whose goals are acted on"),
        FieldSpec("min_interval_ms", .number(GoalSettings.minIntervalRangeMs),
                  help: "a goal this soon after the last one taken is refused (ms, default 1000)"),
        FieldSpec("initial", .string, help: "a goal given at start"),
    ]

    /// `planner.backends[]`.
    public static let plannerBackend: [FieldSpec] = [
        FieldSpec("name", .string, required: true, help: "what answers and health figures carry"),
        FieldSpec("kind", .oneOf(["openai"]), help: "an OpenAI-compatible chat-completions server (default)"),
        FieldSpec("base_url", .string, required: true, help: "http(s)://HOST[:PORT]/v1: requests go to <base_url>/chat/completions"),
        FieldSpec("model", .string, required: true, help: "the model the server is asked for"),
        FieldSpec("api_key_env", .string, help: "the environment variable holding the API key"),
        FieldSpec("api_key_file", .string, help: "a file holding the API key (one line)"),
        FieldSpec("dialect", .oneOf(PlannerBackendSettings.dialects), help: "how the plan's schema is sent (default json_schema)"),
        FieldSpec("deadline_ms", .number(PlannerSettings.requestTimeRangeMs), help: "one request's total time (ms, default 10000)"),
        FieldSpec("max_response_bytes", .integer(1024...(64 << 20)), help: "a larger response is cut (default 262144)"),
        FieldSpec("goal_kinds", .list(.oneOf(AbilityAction.allCases.map(\.rawValue))), help: "the goal kinds it serves (default: every goal)"),
        FieldSpec("breaker", .object([
            FieldSpec("failure_threshold", .integer(1...100), help: "consecutive failures that open it (default 3)"),
            FieldSpec("cool_down_ms", .number(PlannerBackendSettings.BreakerSettings.coolDownRangeMs),
                      help: "how long it stays open before one probe (ms, default 30000)"),
        ]), help: "its circuit breaker"),
    ]
}

/// A command channel: its kind, limits (ros2_control's joint_limits names), safe value, stop
/// category and watchdog. A channel without limits, safe value or stop category is an error.
public struct ChannelSettings: Sendable, Equatable, Codable {
    public var name: String
    /// `continuous` or `discrete`.
    public var kind: String
    /// Continuous channels: what the value is — `velocity`, `position`, `effort` or `duty`
    /// (ros2_control's command interfaces); it decides what each limit bounds.
    public var interface: String?
    public var limits: LimitSettings
    /// Tighter envelopes per command origin (`policy`, `teleop`, `planner`): they only narrow.
    public var envelopes: [String: LimitSettings]?
    public var safeValue: Double
    /// IEC 60204-1 stop category used when this channel is stopped: 0, 1 or 2.
    public var stopCategory: Int
    /// No fresh approved command for this long: the guard takes the channel to its safe value.
    public var watchdogTimeoutMs: Double?
    /// Ramp speed toward the safe value on category-1/2 stops (units/s); default: the deceleration limit.
    public var stopRate: Double?
    /// Commanded versus measured (a wheel with an encoder): runaway, standstill, stalled wheel.
    /// nil: none (`motion_monitor: none` written out, or a channel with no measured speed).
    public var motionMonitor: MotionMonitorSettings?
    /// Whether it moves something: motion channels are zeroed by a hold (workspace edge, a sensor
    /// not yet reporting). Default: true for continuous channels, false for discrete ones.
    public var motion: Bool?

    public init(name: String, kind: String, limits: LimitSettings, safeValue: Double, stopCategory: Int) {
        self.name = name
        self.kind = kind
        self.limits = limits
        self.safeValue = safeValue
        self.stopCategory = stopCategory
    }

    enum CodingKeys: String, CodingKey {
        case name, kind, interface, limits, envelopes
        case safeValue = "safe_value"
        case stopCategory = "stop_category"
        case watchdogTimeoutMs = "watchdog_timeout_ms"
        case stopRate = "stop_rate"
        case motionMonitor = "motion_monitor"
        case motion
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        name = try c.decode(String.self, forKey: .name)
        kind = try c.decode(String.self, forKey: .kind)
        interface = try c.decodeIfPresent(String.self, forKey: .interface)
        limits = try c.decode(LimitSettings.self, forKey: .limits)
        envelopes = try c.decodeIfPresent([String: LimitSettings].self, forKey: .envelopes)
        safeValue = try c.decode(Double.self, forKey: .safeValue)
        stopCategory = try c.decode(Int.self, forKey: .stopCategory)
        watchdogTimeoutMs = try c.decodeIfPresent(Double.self, forKey: .watchdogTimeoutMs)
        stopRate = try c.decodeIfPresent(Double.self, forKey: .stopRate)
        // `motion_monitor: none` is the explicit choice of no monitor (check warns about it).
        if (try? c.decode(String.self, forKey: .motionMonitor)) == "none" {
            motionMonitor = nil
        } else {
            motionMonitor = try c.decodeIfPresent(MotionMonitorSettings.self, forKey: .motionMonitor)
        }
        motion = try c.decodeIfPresent(Bool.self, forKey: .motion)
    }
}

/// ros2_control's joint_limits keys, plus the discrete ones. A `has_*` flag is optional (a value
/// alone enables its limit); `has_*: false` beside its value is an error (ros2_control would
/// silently ignore the value).
public struct LimitSettings: Sendable, Equatable, Codable {
    public var hasPositionLimits: Bool?
    public var minPosition: Double?
    public var maxPosition: Double?
    public var hasVelocityLimits: Bool?
    public var maxVelocity: Double?
    public var hasAccelerationLimits: Bool?
    public var maxAcceleration: Double?
    public var hasDecelerationLimits: Bool?
    public var maxDeceleration: Double?
    public var hasJerkLimits: Bool?
    public var maxJerk: Double?
    public var hasEffortLimits: Bool?
    public var maxEffort: Double?
    /// Duty channels: the value's range (default 0…1), and its rate limit (per second).
    public var minDuty: Double?
    public var maxDuty: Double?
    public var maxDutyRate: Double?
    /// Discrete channels: the states that may be commanded (0 is off), minimum on/off times and
    /// the switch rate.
    public var states: [Int]?
    public var minOnTimeS: Double?
    public var minOffTimeS: Double?
    public var maxSwitchesPerMinute: Int?

    public init() {}

    enum CodingKeys: String, CodingKey {
        case hasPositionLimits = "has_position_limits"
        case minPosition = "min_position"
        case maxPosition = "max_position"
        case hasVelocityLimits = "has_velocity_limits"
        case maxVelocity = "max_velocity"
        case hasAccelerationLimits = "has_acceleration_limits"
        case maxAcceleration = "max_acceleration"
        case hasDecelerationLimits = "has_deceleration_limits"
        case maxDeceleration = "max_deceleration"
        case hasJerkLimits = "has_jerk_limits"
        case maxJerk = "max_jerk"
        case hasEffortLimits = "has_effort_limits"
        case maxEffort = "max_effort"
        case minDuty = "min_duty"
        case maxDuty = "max_duty"
        case maxDutyRate = "max_duty_rate"
        case states
        case minOnTimeS = "min_on_time_s"
        case minOffTimeS = "min_off_time_s"
        case maxSwitchesPerMinute = "max_switches_per_minute"
    }
}

public struct MotionMonitorSettings: Sendable, Equatable, Codable {
    /// Commanded versus measured difference allowed (the channel's units).
    public var tolerance: Double
    /// For this long before it counts.
    public var timeMs: Double
    enum CodingKeys: String, CodingKey {
        case tolerance
        case timeMs = "time_ms"
    }
}

/// A sensor the guard requires fresh. Its samples come from an input's `feeds`.
public struct SensorSettings: Sendable, Equatable, Codable {
    public var name: String
    public var maxAgeMs: Double
    /// `warn`, `hold` or `stop` (with `stop_category`).
    public var reaction: String
    public var stopCategory: Int?
    /// Values outside [min, max] (and non-finite ones) are no sample.
    public var validRange: [Double]?
    /// The unit of its values as people read it (`°C`, `m`): for Home Assistant and the `sensors`
    /// topic; nil: none said. The guard never reads it (limits are in the values' own unit).
    public var unit: String?
    /// A reading beyond a limit locks the named channels at their safe value until a reset.
    public var interlocks: [InterlockSettings]?

    public init(name: String, maxAgeMs: Double, reaction: String) {
        self.name = name
        self.maxAgeMs = maxAgeMs
        self.reaction = reaction
    }

    enum CodingKeys: String, CodingKey {
        case name, reaction, interlocks, unit
        case maxAgeMs = "max_age_ms"
        case stopCategory = "stop_category"
        case validRange = "valid_range"
    }
}

public struct InterlockSettings: Sendable, Equatable, Codable {
    public var min: Double?
    public var max: Double?
    public var channels: [String]
}

/// Differential-drive odometry from wheel encoders: the pose the workspace and the waypoints use.
public struct OdometrySettings: Sendable, Equatable, Codable {
    /// The sensor (fed by an input) that carries encoder counts.
    public var encoders: String
    /// ros2_control's diff_drive_controller names.
    public var leftWheel: String
    public var rightWheel: String
    public var wheelRadius: Double
    public var wheelSeparation: Double
    public var ticksPerRevolution: Double
    /// Where the robot starts in the odom frame (m, m, rad).
    public var initialPose: PoseSettings?

    enum CodingKeys: String, CodingKey {
        case encoders
        case leftWheel = "left_wheel"
        case rightWheel = "right_wheel"
        case wheelRadius = "wheel_radius"
        case wheelSeparation = "wheel_separation"
        case ticksPerRevolution = "ticks_per_revolution"
        case initialPose = "initial_pose"
    }
}

public struct PoseSettings: Sendable, Equatable, Codable {
    public var x: Double
    public var y: Double
    public var yaw: Double
    public init(x: Double, y: Double, yaw: Double) {
        self.x = x
        self.y = y
        self.yaw = yaw
    }
}

/// The allowed area for the pose (odom frame): a polygon (`[[x, y], …]`), a radius around
/// `center`, or both. Inside within `warn_margin` of the edge: warn; outside up to `stop_margin`:
/// hold (zero motion, only motion back toward the workspace); further out: a stop.
public struct WorkspaceSettings: Sendable, Equatable, Codable {
    public var polygon: [[Double]]?
    public var radius: Double?
    public var center: [Double]?
    public var warnMargin: Double
    public var stopMargin: Double
    public var stopCategory: Int

    public init(polygon: [[Double]]?, radius: Double?, center: [Double]?, warnMargin: Double, stopMargin: Double, stopCategory: Int) {
        self.polygon = polygon
        self.radius = radius
        self.center = center
        self.warnMargin = warnMargin
        self.stopMargin = stopMargin
        self.stopCategory = stopCategory
    }

    enum CodingKeys: String, CodingKey {
        case polygon, radius, center
        case warnMargin = "warn_margin"
        case stopMargin = "stop_margin"
        case stopCategory = "stop_category"
    }
}

/// The e-stop: `none` (written out), or the inputs whose `estop` key latches it, its category
/// (0 or 1), and optionally a remote stop and reset over MQTT.
public enum EStopSettings: Sendable, Equatable, Codable {
    case none
    case configured(EStop)

    public struct EStop: Sendable, Equatable, Codable {
        /// Input names (evdev kinds) whose `estop` key action latches the e-stop.
        public var inputs: [String]
        public var category: Int
        /// The e-stop device lost (reader ended, keep-alive missing): a stop of this category.
        public var deviceLostCategory: Int?
        /// A stream device (a FIFO) must show a frame this often, or it counts as lost.
        public var livenessMs: Double?
        public var remote: RemoteStopSettings?

        enum CodingKeys: String, CodingKey {
            case inputs, category, remote
            case deviceLostCategory = "device_lost_category"
            case livenessMs = "liveness_ms"
        }
    }

    public init(from decoder: any Decoder) throws {
        if let word = try? decoder.singleValueContainer().decode(String.self) {
            guard word == "none" else {
                throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "estop: only `none` or a map"))
            }
            self = .none
        } else {
            self = .configured(try EStop(from: decoder))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        switch self {
        case .none:
            var c = encoder.singleValueContainer()
            try c.encode("none")
        case .configured(let e): try e.encode(to: encoder)
        }
    }
}

/// A remote stop (latching) and reset over MQTT (docs/mqtt.md, "Inbound topics and security").
/// Retained messages are ignored. The topics default to the robot's prefix
/// (`RobotConfiguration.inboundTopics`): `<prefix>estop`, and reset requests on
/// `<prefix>estop/reset/<user>`.
public struct RemoteStopSettings: Sendable, Equatable, Codable {
    /// nil: `<prefix>estop`.
    public var stopTopic: String?
    /// The base of the reset requests: a request is published on `<reset_topic>/<user>`. nil:
    /// `<prefix>estop/reset`.
    public var resetTopic: String?
    public var category: Int
    /// MQTT user names whose reset requests robotd acts on (the broker's ACL makes the name in
    /// the topic the publisher's own); empty: every remote reset is refused.
    public var resetUsers: [String] = []
    /// The operator station's keep-alive on `<stop topic>/alive` (by default `<prefix>estop/alive`), a counter that must
    /// advance (a replay does not count): silence longer than this is a lost link (a stop). nil: `heartbeat_ms: none` — the stop path is not supervised end to end.
    public var heartbeatMs: Double?

    public init(stopTopic: String? = nil, resetTopic: String? = nil, category: Int, resetUsers: [String] = [],
                heartbeatMs: Double? = nil) {
        self.stopTopic = stopTopic
        self.resetTopic = resetTopic
        self.category = category
        self.resetUsers = resetUsers
        self.heartbeatMs = heartbeatMs
    }

    enum CodingKeys: String, CodingKey {
        case category
        case stopTopic = "stop_topic"
        case resetTopic = "reset_topic"
        case resetUsers = "reset_users"
        case heartbeatMs = "heartbeat_ms"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        stopTopic = try c.decodeIfPresent(String.self, forKey: .stopTopic)
        resetTopic = try c.decodeIfPresent(String.self, forKey: .resetTopic)
        category = try c.decode(Int.self, forKey: .category)
        resetUsers = try c.decodeIfPresent([String].self, forKey: .resetUsers) ?? []
        // `none` (the weaker choice written out) or a number of ms.
        heartbeatMs = (try? c.decodeIfPresent(String.self, forKey: .heartbeatMs)) == "none" ? nil
            : try c.decodeIfPresent(Double.self, forKey: .heartbeatMs)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encodeIfPresent(stopTopic, forKey: .stopTopic)
        try c.encodeIfPresent(resetTopic, forKey: .resetTopic)
        try c.encode(category, forKey: .category)
        try c.encode(resetUsers, forKey: .resetUsers)
        if let heartbeatMs { try c.encode(heartbeatMs, forKey: .heartbeatMs) } else { try c.encode("none", forKey: .heartbeatMs) }
    }
}

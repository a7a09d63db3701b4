/// The file's core sections as `FieldSpec`s: the one description of every key outside the kinds'
/// own ones, which the validator checks against and docs/configuration.md lists (a test keeps
/// the two in step). Key names are the model's `CodingKeys`.
public enum ConfigurationSchema {
    /// The top-level keys, in the order the documentation presents them.
    public static let root: [FieldSpec] = [
        FieldSpec("robot", .object(robot), required: true, help: "who this is"),
        FieldSpec("scheduler", .object(scheduler), help: "the real-time setup of the dispatch and input threads"),
        FieldSpec("safety", .object(safety), help: "the safety guard's own settings"),
        FieldSpec("mqtt", .object(mqtt), help: "the broker used by `mqtt` inputs and actuators, the remote stop and telemetry"),
        FieldSpec("inputs", .list(.object(inputCommon)), help: "devices and subscriptions that post events"),
        FieldSpec("sensors", .list(.object(sensor)), help: "sensors the guard requires fresh"),
        FieldSpec("odometry", .object(odometry), help: "differential-drive odometry from wheel encoders"),
        FieldSpec("channels", .list(.object(channel), minCount: 1), required: true,
                  help: "every commanded value: its limits, safe value and stop category"),
        FieldSpec("workspace", .object(workspace), help: "the allowed area for the pose"),
        FieldSpec("estop", .either([.word("none"), .object(estop)]), required: true,
                  help: "a robot with no e-stop input must say `estop: none`"),
        FieldSpec("policies", .list(.object(policyCommon)), help: "periodic tasks that command channels"),
        FieldSpec("actuators", .list(.object(actuatorCommon)), help: "back ends that carry channels to devices"),
        FieldSpec("abilities", .list(.object(ability)), help: "what a plan may ask the robot to do (docs/planner.md)"),
        FieldSpec("planner", .object(planner), help: "how plans are judged (docs/planner.md)"),
        FieldSpec("memory", .object(memory), help: "the planner's episodic memory: an SQLite file (docs/planner.md)"),
    ]

    public static let robot: [FieldSpec] = [
        FieldSpec("id", .string, required: true, help: "letters, digits, `-` and `_`; part of MQTT topics and file names"),
        FieldSpec("description", .string),
    ]

    public static let scheduler: [FieldSpec] = [
        FieldSpec("priority", .integer(0...99), help: "SCHED_FIFO priority of the dispatch thread, 1…99; 0: none"),
        FieldSpec("dispatch_cpu", .integer(0...4095), help: "the CPU the dispatch thread is pinned to"),
        FieldSpec("supervisor_budget_ms", .positive,
                  help: "a handler running longer than this puts every actuator in its safe state"),
        FieldSpec("input_priorities", .object([
            FieldSpec("estop", .integer(0...99), help: "SCHED_FIFO priority of e-stop device readers; 0: none"),
            FieldSpec("sensors", .integer(0...99), help: "SCHED_FIFO priority of the other readers; 0: none"),
        ])),
        FieldSpec("lock_memory", .bool, help: "mlockall: no page fault on the real-time path"),
    ]

    public static let safety: [FieldSpec] = [
        FieldSpec("start_latched", .bool, help: "nothing moves until a deliberate reset (keep true on hardware)"),
        FieldSpec("startup_timeout_ms", .positive, help: "a required sensor silent this long after start is a stop"),
        FieldSpec("guard_period_ms", .positive, help: "the guard's own periodic task"),
        FieldSpec("critical_misses", .integer(1...1000), help: "consecutive misses of a critical task that make a stop"),
    ]

    public static let mqtt: [FieldSpec] = [
        FieldSpec("broker", .string, required: true, help: "HOST:PORT"),
        FieldSpec("client_id", .string),
        FieldSpec("username", .string),
        FieldSpec("password_env", .string, help: "the environment variable holding the password"),
        FieldSpec("password_file", .string, help: "a file holding the password (one line)"),
        FieldSpec("ca_file", .string, help: "CA certificate: TLS is on when set"),
        FieldSpec("keepalive_s", .number(5...65535), help: "MQTT keep-alive interval (libmosquitto refuses less than 5 s)"),
        FieldSpec("command_confirmation_s", .number(0.2...3600),
                  help: "how long an mqtt actuator's command may stay unconfirmed while connected (QoS 0: not written; QoS 1: not acknowledged) before its channel fails (default 3 × keepalive_s)"),
        FieldSpec("telemetry", .object(telemetry), help: "what robotd publishes about itself (docs/mqtt.md)"),
        FieldSpec("prefix", .string, help: "every robotd topic starts with it (default `robotd/<robot id>/`)"),
        FieldSpec("home_assistant", .either([.bool, .object(homeAssistant)]),
                  help: "Home Assistant MQTT discovery: true, or {discovery_prefix: …} (docs/mqtt.md)"),
    ]

    /// Keys every input has beside its kind's (`InputSettings.commonKeys`).
    public static let inputCommon: [FieldSpec] = [
        FieldSpec("name", .string, required: true),
        FieldSpec("kind", .string, required: true),
        FieldSpec("queue", .object([
            FieldSpec("capacity", .integer(1...65536), required: true, help: "events held for the dispatch thread"),
            FieldSpec("overflow", .oneOf(["reject", "drop_oldest", "keep_latest_per_key"]), required: true,
                      help: "what a full queue does with a new event"),
        ])),
        FieldSpec("priority", .oneOf(["critical", "high", "normal", "low"]), help: "dispatch class of its events"),
        FieldSpec("deadline_ms", .positive, help: "relative deadline of its events after arrival"),
    ]

    public static let sensor: [FieldSpec] = [
        FieldSpec("name", .string, required: true),
        FieldSpec("max_age_ms", .positive, required: true, help: "older than this, the sensor is stale"),
        FieldSpec("reaction", .oneOf(["warn", "hold", "stop"]), required: true,
                  help: "what a stale or silent sensor does"),
        FieldSpec("stop_category", .integer(0...2), help: "with `reaction: stop`"),
        FieldSpec("valid_range", .list(.number(), minCount: 2), help: "[min, max]: values outside are no sample"),
        FieldSpec("unit", .string, help: "the unit of its values (°C, m, …): Home Assistant's unit_of_measurement, the `sensors` topic's `unit`"),
        FieldSpec("interlocks", .list(.object([
            FieldSpec("min", .number()),
            FieldSpec("max", .number()),
            FieldSpec("channels", .list(.string, minCount: 1), required: true,
                      help: "locked at their safe value until a reset"),
        ]))),
    ]

    public static let odometry: [FieldSpec] = [
        FieldSpec("encoders", .string, required: true, help: "the sensor carrying the wheel encoder counts"),
        FieldSpec("left_wheel", .string, required: true, help: "the left wheel's velocity channel"),
        FieldSpec("right_wheel", .string, required: true, help: "the right wheel's velocity channel"),
        FieldSpec("wheel_radius", .positive, required: true, help: "m"),
        FieldSpec("wheel_separation", .positive, required: true, help: "m"),
        FieldSpec("ticks_per_revolution", .positive, required: true),
        FieldSpec("initial_pose", .object([
            FieldSpec("x", .number(), required: true, help: "m"),
            FieldSpec("y", .number(), required: true, help: "m"),
            FieldSpec("yaw", .number(), required: true, help: "rad"),
        ])),
    ]

    /// ros2_control's joint_limits keys, plus duty and discrete ones.
    public static let limits: [FieldSpec] = [
        FieldSpec("has_position_limits", .bool),
        FieldSpec("min_position", .number(), help: "position channels"),
        FieldSpec("max_position", .number(), help: "position channels"),
        FieldSpec("has_velocity_limits", .bool),
        FieldSpec("max_velocity", .positive, help: "velocity channels: |value|; position channels: |rate|"),
        FieldSpec("has_acceleration_limits", .bool),
        FieldSpec("max_acceleration", .positive, help: "velocity channels: |rate|; position channels: |2nd derivative|"),
        FieldSpec("has_deceleration_limits", .bool),
        FieldSpec("max_deceleration", .positive, help: "velocity channels: |rate| while slowing"),
        FieldSpec("has_jerk_limits", .bool),
        FieldSpec("max_jerk", .positive, help: "velocity channels: |2nd derivative|; position: |3rd|"),
        FieldSpec("has_effort_limits", .bool),
        FieldSpec("max_effort", .positive, help: "effort channels: |value|"),
        FieldSpec("min_duty", .number(0...1), help: "duty channels (default 0)"),
        FieldSpec("max_duty", .number(0...1), help: "duty channels (default 1)"),
        FieldSpec("max_duty_rate", .positive, help: "duty channels: |rate| per second"),
        FieldSpec("states", .list(.integer(0...63), minCount: 1), help: "discrete channels: allowed states, 0 is off"),
        FieldSpec("min_on_time_s", .nonNegative, help: "discrete channels"),
        FieldSpec("min_off_time_s", .nonNegative, help: "discrete channels"),
        FieldSpec("max_switches_per_minute", .integer(1...64), help: "discrete channels"),
    ]

    public static let channel: [FieldSpec] = [
        FieldSpec("name", .string, required: true),
        FieldSpec("kind", .oneOf(["continuous", "discrete"]), required: true),
        FieldSpec("interface", .oneOf(["velocity", "position", "effort", "duty"]),
                  help: "continuous channels: what the value is; it decides what each limit bounds"),
        FieldSpec("limits", .object(limits), required: true, help: "a channel without limits is refused"),
        FieldSpec("envelopes", .dictionary(.object(limits)),
                  help: "tighter limits per command origin (policy, teleop, planner)"),
        FieldSpec("safe_value", .number(), required: true, help: "where every stop takes the channel"),
        FieldSpec("stop_category", .integer(0...2), required: true,
                  help: "IEC 60204-1: 0 power off at once, 1 controlled stop then power off, 2 controlled stop, power kept"),
        FieldSpec("watchdog_timeout_ms", .positive, help: "no fresh approved command this long: the safe value"),
        FieldSpec("motion", .bool, help: "zeroed by a hold (default: true for continuous channels, false for discrete ones)"),
        FieldSpec("stop_rate", .positive, help: "ramp toward the safe value (units/s)"),
        FieldSpec("motion_monitor", .either([.word("none"), .object([
            FieldSpec("tolerance", .positive, required: true, help: "commanded versus measured (channel units)"),
            FieldSpec("time_ms", .nonNegative, required: true, help: "for this long before it counts"),
        ])]), help: "runaway, standstill, stalled wheel; required on a channel with a measured speed (an odometry wheel) unless `none` is written out"),
    ]

    public static let workspace: [FieldSpec] = [
        FieldSpec("polygon", .list(.list(.number(), minCount: 2), minCount: 3), help: "[[x, y], …] in m, odom frame"),
        FieldSpec("radius", .positive, help: "m, around `center`"),
        FieldSpec("center", .list(.number(), minCount: 2), help: "[x, y] in m (default [0, 0])"),
        FieldSpec("warn_margin", .nonNegative, required: true, help: "m inside the edge"),
        FieldSpec("stop_margin", .nonNegative, required: true, help: "m outside the edge: hold, then stop"),
        FieldSpec("stop_category", .integer(0...2), required: true),
    ]

    public static let estop: [FieldSpec] = [
        FieldSpec("inputs", .list(.string), required: true, help: "inputs whose `estop` key latches the e-stop"),
        FieldSpec("category", .integer(0...1), required: true,
                  help: "an emergency stop is category 0 (power off at once) or 1 (controlled stop, then power off), never 2"),
        FieldSpec("device_lost_category", .integer(0...1),
                  help: "the e-stop device lost: a stop of this category (0 or 1: without it nothing can stop the robot)"),
        FieldSpec("liveness_ms", .positive, help: "a stream device (a FIFO) must show a frame this often"),
        FieldSpec("remote", .object([
            FieldSpec("stop_topic", .string, help: "any message latches a stop (default `<prefix>estop`)"),
            FieldSpec("reset_topic", .string,
                      help: "reset requests arrive on `<reset_topic>/<user>` (default `<prefix>estop/reset`)"),
            FieldSpec("category", .integer(0...1), required: true, help: "0 or 1, as the e-stop"),
            FieldSpec("reset_users", .list(.string),
                      help: "MQTT users whose reset requests are acted on (none: every remote reset is refused)"),
            FieldSpec("heartbeat_ms", .either([.word("none"), .number(50...60_000)]), required: true,
                      help: "the operator station's keep-alive on `<stop topic>/alive` (by default `<prefix>estop/alive`), a counter greater than the last one each time (replays do not count): silence longer than this is a lost link (a stop); `none`: not supervised (a warning)"),
        ]), help: "a latching stop and reset over MQTT"),
    ]

    /// Keys every policy has beside its kind's (`PolicySettings.commonKeys`).
    public static let policyCommon: [FieldSpec] = [
        FieldSpec("name", .string, required: true),
        FieldSpec("kind", .string, required: true),
        FieldSpec("period_ms", .positive, help: "the policy runs this often (required, except for a filter)"),
        FieldSpec("deadline_ms", .positive, help: "relative deadline of each run (default: the period)"),
        FieldSpec("critical", .bool, help: "a miss streak is a deadline fault (a stop)"),
        FieldSpec("channels", .list(.string), help: "the channels it commands"),
        FieldSpec("priority", .integer(0...1000), help: "arbitration: the highest fresh output wins"),
        FieldSpec("timeout_ms", .positive, help: "an output older than this does not win arbitration"),
    ]

    /// Keys every actuator has beside its kind's (`ActuatorSettings.commonKeys`).
    public static let actuatorCommon: [FieldSpec] = [
        FieldSpec("name", .string, required: true),
        FieldSpec("kind", .string, required: true),
    ]

    /// The lists whose entries have a `kind` from the catalog: their keys are the common ones plus
    /// the kind's.
    static var kindedSections: [(key: String, noun: String, common: [FieldSpec], kinds: (KindCatalog) -> [KindSpec])] {
        [
            ("inputs", "input", inputCommon, { $0.inputs }),
            ("policies", "policy", policyCommon, { $0.policies }),
            ("actuators", "actuator", actuatorCommon, { $0.actuators }),
        ]
    }
}

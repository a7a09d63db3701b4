import RobotConfig

/// TEMPORARY: the kinds `robotd check` validates against until the runtime's registry
/// (`RobotKinds.catalog` in AIOSRobot, one file per kind) lands; then Check.swift uses that and
/// this file goes. It lists the kinds the examples use, with the keys the examples give them.
enum TemporaryKindCatalog {
    static let catalog = KindCatalog(
        policies: [
            KindSpec(kind: "teleop", summary: "gamepad sticks → wheel speeds, while the deadman key is held", fields: [
                FieldSpec("input", .string, required: true, help: "the evdev input with the sticks", refersTo: .input),
                FieldSpec("linear_axis", .string, help: "axis name for forward speed (default linear)"),
                FieldSpec("angular_axis", .string, help: "axis name for turn rate (default angular)"),
                FieldSpec("deadman", .bool, help: "drive only while the input's deadman key is held (default true)"),
                FieldSpec("max_linear", .positive, help: "m/s at full stick"),
                FieldSpec("max_angular", .positive, help: "rad/s at full stick"),
            ]),
            KindSpec(kind: "wander", summary: "cruise, slow down and turn away from obstacles", fields: [
                FieldSpec("range_sensor", .string, required: true, refersTo: .sensor),
                FieldSpec("cruise", .positive, help: "m/s"),
                FieldSpec("slow_range", .positive, help: "m"),
                FieldSpec("turn_range", .positive, help: "m"),
                FieldSpec("clear_range", .positive, help: "m"),
                FieldSpec("turn_speed", .positive, help: "rad/s"),
            ]),
            KindSpec(kind: "obstacle_stop", summary: "a filter: no forward motion closer than stop_distance", fields: [
                FieldSpec("range_sensor", .string, required: true, refersTo: .sensor),
                FieldSpec("stop_distance", .positive, required: true, help: "m"),
                FieldSpec("slow_distance", .positive, help: "m"),
            ]),
            KindSpec(kind: "waypoints", summary: "pure pursuit over a list of points", fields: [
                FieldSpec("points", .list(.list(.number(), minCount: 2), minCount: 1), required: true, help: "[[x, y], …] m, odom frame"),
                FieldSpec("lookahead", .positive, help: "m"),
                FieldSpec("speed", .positive, help: "m/s"),
                FieldSpec("tolerance", .positive, help: "m"),
                FieldSpec("loop", .bool),
            ]),
            KindSpec(kind: "thermostat", summary: "hysteresis or PID on a temperature", fields: [
                FieldSpec("sensor", .string, required: true, refersTo: .sensor),
                FieldSpec("setpoint", .number(), required: true, help: "°C"),
                FieldSpec("mode", .oneOf(["hysteresis", "pid"])),
                FieldSpec("band", .positive, help: "°C"),
                FieldSpec("fan_start", .number(), help: "°C above the setpoint"),
                FieldSpec("fan_full", .number(), help: "°C above the setpoint"),
                FieldSpec("kp", .number()),
                FieldSpec("ki", .number()),
                FieldSpec("kd", .number()),
            ]),
        ],
        inputs: [
            KindSpec(kind: "serial", summary: "a serial device: robotd frames, NMEA or key=value lines", fields: [
                FieldSpec("path", .string, required: true, help: "a device path or usb-serial:SERIAL"),
                FieldSpec("baud", .integer(50...4_000_000)),
                FieldSpec("framing", .oneOf(["8N1", "8E1", "8O1", "8N2", "7E1", "7O1"]), help: "data bits, parity, stop bits"),
                FieldSpec("codec", .oneOf(["frame", "nmea", "kv"]), required: true),
                FieldSpec("feeds", .dictionary(.string), help: "message → sensor", refersTo: .sensor),
                FieldSpec("link_timeout_ms", .positive, help: "no frame at all this long: connection lost"),
            ]),
            KindSpec(kind: "evdev", summary: "an input device (gamepad) or a FIFO of input_event records", fields: [
                FieldSpec("path", .string, required: true),
                FieldSpec("grab", .bool, help: "exclusive access (EVIOCGRAB)"),
                FieldSpec("axes", .list(.object([
                    FieldSpec("code", .string, required: true, help: "libevdev name, e.g. ABS_Y"),
                    FieldSpec("name", .string, required: true),
                    FieldSpec("deadzone", .number(0...0.99)),
                    FieldSpec("invert", .bool),
                    FieldSpec("scale", .number()),
                    FieldSpec("min", .integer()),
                    FieldSpec("max", .integer()),
                ]))),
                FieldSpec("keys", .list(.object([
                    FieldSpec("code", .string, required: true, help: "libevdev name, e.g. BTN_SOUTH"),
                    FieldSpec("action", .string, required: true, help: "estop, reset, deadman, mode:NAME or a name"),
                ]))),
            ]),
            KindSpec(kind: "mqtt", summary: "an MQTT subscription with a JSON field", fields: [
                FieldSpec("topic", .string, required: true, help: "a topic filter"),
                FieldSpec("field", .string, help: "JSON field path in the payload"),
                FieldSpec("qos", .integer(0...2)),
                FieldSpec("feeds", .string, help: "the sensor", refersTo: .sensor),
            ]),
        ],
        actuators: [
            KindSpec(kind: "serial_frames", summary: "robotd motor frames to a serial port", fields: [
                FieldSpec("path", .string, required: true, help: "a device path or usb-serial:SERIAL"),
                FieldSpec("baud", .integer(50...4_000_000)),
                FieldSpec("heartbeat", .bool, help: "send heartbeat frames"),
                FieldSpec("channels", .dictionary(.object([
                    FieldSpec("motor", .integer(0...255), required: true),
                    FieldSpec("mode", .oneOf(["velocity", "position", "effort", "duty", "discrete"]), required: true),
                ])), required: true, refersTo: NameReference(.channel, inKeys: true)),
            ]),
            KindSpec(kind: "mqtt", summary: "MQTT messages, one topic and payload template per channel", fields: [
                FieldSpec("channels", .dictionary(.object([
                    FieldSpec("topic", .string, required: true),
                    FieldSpec("payload", .string, help: "template: {value}, {channel}"),
                    FieldSpec("states", .list(.string), help: "discrete channels: a word per state"),
                    FieldSpec("qos", .integer(0...2)),
                    FieldSpec("retain", .bool, help: "never true: commands are not retained"),
                ])), required: true, refersTo: NameReference(.channel, inKeys: true)),
            ]),
            KindSpec(kind: "simulator", summary: "the bundled simulator, in process", fields: [
                FieldSpec("channels", .list(.string, minCount: 1), required: true, refersTo: .channel),
            ]),
        ])
}

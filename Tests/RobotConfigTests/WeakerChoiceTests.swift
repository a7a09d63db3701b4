import RobotConfig
import Testing

/// A weaker safety choice is allowed only when the file writes it out, and then `check` names it in
/// a warning; leaving the key out is an error. Each rule at its exact line:column and key path.
@Suite("check: weaker safety choices are written out or refused")
struct WeakerChoiceTests {
    // MARK: Acceleration limits on motion channels

    @Test func a_motion_channel_without_an_acceleration_limit_is_refused() {
        let report = check(base(removing: [9]))
        #expect(report.configuration == nil)
        expectProblem(report, at: 8, 7, "channels[0].limits.max_acceleration", "a motion channel needs an acceleration limit")
        let position = check(base(replacing: [6: "    interface: position", 8: "      min_position: -1", 9: "      max_position: 1"]))
        expectProblem(position, at: 8, 7, "channels[0].limits.max_acceleration", "any step in rate passes")
    }

    @Test func an_acceleration_limit_switched_off_in_writing_is_a_warning() {
        let report = check(base(replacing: [9: "      has_acceleration_limits: false"]))
        #expect(report.errors.isEmpty, "\(report)")
        expectProblem(report, .warning, at: 9, 32, "channels[0].limits.has_acceleration_limits", "any step in speed passes the guard")
    }

    @Test func motion_false_on_a_joint_is_a_warning_and_needs_no_acceleration_limit() {
        let report = check(base(replacing: [6: "    interface: position", 8: "      min_position: -1", 9: "      max_position: 1",
                                            12: "    motion: false"]))
        #expect(report.errors.isEmpty, "\(report)")
        expectProblem(report, .warning, at: 12, 13, "channels[0].motion", "false on a position channel, which moves a joint")
        let effort = check(base(replacing: [6: "    interface: effort", 8: "      max_effort: 5", 9: "    motion: false"]))
        expectProblem(effort, .warning, at: 9, 13, "channels[0].motion", "false on an effort channel")
    }

    // MARK: Motion monitor and link time-out

    /// Two odometry wheels fed by a serial port: the left without a monitor, the right with `none`.
    static let rover = """
        robot: {id: test}
        estop: none
        sensors:
          - {name: enc, max_age_ms: 100, reaction: stop, stop_category: 1}
        inputs:
          - name: port
            kind: serial
            path: /dev/ttyUSB0
            codec: frame
            feeds: {wheel_encoders: enc}
        odometry:
          encoders: enc
          left_wheel: left
          right_wheel: right
          wheel_radius: 0.05
          wheel_separation: 0.3
          ticks_per_revolution: 1024
        channels:
          - name: left
            kind: continuous
            interface: velocity
            limits: {max_velocity: 10, max_acceleration: 20}
            safe_value: 0
            stop_category: 1
            watchdog_timeout_ms: 100
          - name: right
            kind: continuous
            interface: velocity
            limits: {max_velocity: 10, max_acceleration: 20}
            safe_value: 0
            stop_category: 1
            watchdog_timeout_ms: 100
            motion_monitor: none
        actuators:
          - name: sim
            kind: simulator
            channels: [left, right]

        """

    @Test func a_wheel_without_a_motion_monitor_is_refused_and_none_written_out_is_a_warning() {
        let report = check(Self.rover)
        #expect(report.configuration == nil)
        expectProblem(report, at: 19, 5, "channels[0].motion_monitor", "missing: this wheel has a measured speed")
        expectProblem(report, .warning, at: 33, 21, "channels[1].motion_monitor", "none: this wheel's measured speed is not compared")
        // A channel with no measured speed may say none without a word: there is nothing to monitor.
        let plain = check(base(replacing: [12: "    watchdog_timeout_ms: 100\n    motion_monitor: none"]))
        #expect(!plain.problems.contains { $0.keyPath == "channels[0].motion_monitor" }, "\(plain)")
    }

    @Test func a_serial_input_without_a_link_timeout_is_refused_and_none_written_out_is_a_warning() {
        let report = check(Self.rover)
        expectProblem(report, at: 6, 5, "inputs[0].link_timeout_ms", "missing: without it a device that stops talking is never a lost link")
        let none = check(Self.rover.replacingOccurrences(of: "    feeds: {wheel_encoders: enc}\n",
                                                         with: "    feeds: {wheel_encoders: enc}\n    link_timeout_ms: none\n"))
        expectProblem(none, .warning, at: 11, 22, "inputs[0].link_timeout_ms", "none: a link that goes silent is not a lost link")
        #expect(!none.errors.contains { $0.keyPath == "inputs[0].link_timeout_ms" }, "\(none)")
        let set = check(Self.rover.replacingOccurrences(of: "    feeds: {wheel_encoders: enc}\n",
                                                        with: "    feeds: {wheel_encoders: enc}\n    link_timeout_ms: 150\n"))
        #expect(!set.problems.contains { $0.keyPath == "inputs[0].link_timeout_ms" }, "\(set)")
    }

    // MARK: Critical policies on motion channels

    static func wander(_ extra: String...) -> String {
        base(appending: [
            "sensors:",                                            // 17
            "  - {name: range, max_age_ms: 100, reaction: hold}",
            "policies:",
            "  - name: drive",                                     // 20
            "    kind: wander",
            "    period_ms: 20",
            "    channels: [wheel]",
            "    range_sensor: range",                             // 24
        ] + extra)
    }

    @Test func a_policy_on_a_motion_channel_must_say_whether_it_is_critical() {
        let report = check(Self.wander())
        #expect(report.configuration == nil)
        expectProblem(report, at: 20, 5, "policies[0].critical", "missing: it commands motion channel `wheel`")
        let relaxed = check(Self.wander("    critical: false"))
        #expect(relaxed.errors.isEmpty, "\(relaxed)")
        expectProblem(relaxed, .warning, at: 25, 15, "policies[0].critical", "never stop the robot")
        #expect(!check(Self.wander("    critical: true")).problems.contains { $0.keyPath == "policies[0].critical" })
    }

    @Test func start_latched_false_is_a_warning() {
        let report = check(base(appending: ["safety: {start_latched: false}"]))
        #expect(report.errors.isEmpty, "\(report)")
        expectProblem(report, .warning, at: 17, 25, "safety.start_latched", "may move without a deliberate reset")
    }

    // MARK: Thermostats

    static func rig(policyExtra: [String] = [], interlocks: String = "") -> String {
        ([
            "robot: {id: test}",
            "estop: none",
            "sensors:",
            "  - {name: temperature, max_age_ms: 5000, reaction: stop, stop_category: 0\(interlocks)}",
            "channels:",
            "  - name: heater",                                   // 6
            "    kind: discrete",
            "    limits: {states: [0, 1]}",
            "    safe_value: 0",
            "    stop_category: 0",
            "policies:",
            "  - name: thermostat",                               // 12
            "    kind: thermostat",
            "    period_ms: 1000",
            "    channels: [heater]",
            "    sensor: temperature",
            "    setpoint: 35",                                   // 17
        ] + policyExtra + [
            "actuators:",
            "  - name: sim",
            "    kind: simulator",
            "    channels: [heater]",
        ]).joined(separator: "\n") + "\n"
    }

    @Test func a_thermostat_without_an_over_temperature_interlock_or_a_heater_watchdog_is_refused() {
        let report = check(Self.rig())
        #expect(report.configuration == nil)
        expectProblem(report, at: 12, 5, "policies[0].interlock", "no sensor interlock with `max` locks heater `heater` off")
        expectProblem(report, at: 6, 5, "channels[0].watchdog_timeout_ms", "a heater left on")
        let none = check(Self.rig(policyExtra: ["    interlock: none"]))
        expectProblem(none, .warning, at: 18, 16, "policies[0].interlock", "nothing but this policy switches heater `heater` off")
        #expect(!none.errors.contains { $0.keyPath == "policies[0].interlock" })
        let interlocked = check(Self.rig(interlocks: ", interlocks: [{max: 60, channels: [heater]}]"))
        #expect(!interlocked.problems.contains { $0.keyPath == "policies[0].interlock" }, "\(interlocked)")
        // A `min` interlock is no over-temperature interlock.
        let low = check(Self.rig(interlocks: ", interlocks: [{min: 5, channels: [heater]}]"))
        expectProblem(low, at: 12, 5, "policies[0].interlock", "missing")
    }

    // MARK: Teleop's hand-back

    static func teleop(keys: String = "[{code: BTN_TL, action: deadman}]", _ extra: String...) -> String {
        base(appending: [
            "inputs:",                                             // 17
            "  - name: pad",
            "    kind: evdev",
            "    path: /dev/input/event0",
            "    keys: \(keys)",                                   // 21
            "sensors:",
            "  - {name: range, max_age_ms: 100, reaction: hold}",
            "policies:",
            "  - name: drive",                                     // 25
            "    kind: wander",
            "    period_ms: 20",
            "    critical: true",
            "    channels: [wheel]",
            "    range_sensor: range",
            "  - name: teleop",                                    // 31
            "    kind: teleop",
            "    period_ms: 20",
            "    critical: true",
            "    channels: [wheel]",
            "    priority: 100",
            "    input: pad",                                      // 37
            "    max_linear: 0.5",
            "    max_angular: 1.5",
        ] + extra)
    }

    @Test func a_holding_teleop_without_a_handback_key_is_refused_when_another_policy_shares_its_wheels() {
        let report = check(Self.teleop())
        #expect(report.configuration == nil)
        expectProblem(report, at: 37, 12, "policies[1].input", "`drive` could never drive again")
        let withKey = check(Self.teleop(keys: "[{code: BTN_TL, action: deadman}, {code: BTN_NORTH, action: handback}]"))
        #expect(withKey.errors.isEmpty, "\(withKey)")
        #expect(!withKey.problems.contains { $0.keyPath.hasPrefix("policies") }, "\(withKey)")
    }

    @Test func on_release_yield_is_a_warning_and_release_hold_needs_it() {
        let yield = check(Self.teleop("    on_release: yield", "    release_hold_ms: 500"))
        #expect(yield.errors.isEmpty, "\(yield)")
        expectProblem(yield, .warning, at: 40, 17, "policies[1].on_release", "the policies below it drive again by themselves")
        let hold = check(Self.teleop(keys: "[{code: BTN_TL, action: deadman}, {code: BTN_NORTH, action: handback}]", "    release_hold_ms: 500"))
        expectProblem(hold, at: 40, 5, "policies[1].release_hold_ms", "is only used with `on_release: yield`")
    }

    // MARK: MQTT

    @Test func a_broker_on_another_machine_without_tls_is_a_warning() {
        let remote = check(base(appending: ["mqtt: {broker: 192.168.1.10:1883}"]))
        #expect(remote.errors.isEmpty, "\(remote)")
        expectProblem(remote, .warning, at: 17, 16, "mqtt.broker", "without TLS")
        for local in ["127.0.0.1:1883", "localhost:1883", "[::1]:1883"] {
            #expect(!check(base(appending: ["mqtt: {broker: \"\(local)\"}"])).problems.contains { $0.keyPath == "mqtt.broker" }, "\(local)")
        }
        let tls = check(base(appending: ["mqtt: {broker: 192.168.1.10:8883, ca_file: /etc/ca.crt}"]))
        #expect(!tls.problems.contains { $0.keyPath == "mqtt.broker" }, "\(tls)")
    }

    @Test func a_stopping_sensor_read_over_mqtt_at_qos_0_is_a_warning() {
        let text = base(appending: [
            "mqtt: {broker: 127.0.0.1:1883}",                                        // 17
            "sensors:",
            "  - {name: temperature, max_age_ms: 5000, reaction: stop, stop_category: 0}",
            "inputs:",
            "  - name: probe",
            "    kind: mqtt",
            "    topic: lab/probe",
            "    qos: 0",                                                             // 24
            "    feeds: temperature",
        ])
        let report = check(text)
        expectProblem(report, .warning, at: 24, 10, "inputs[0].qos", "0 for sensor `temperature`, which stops the robot")
        let qos1 = check(text.replacingOccurrences(of: "qos: 0", with: "qos: 1"))
        #expect(!qos1.problems.contains { $0.keyPath == "inputs[0].qos" }, "\(qos1)")
    }
}

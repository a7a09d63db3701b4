import RobotConfig
import Testing

/// Broken files are refused, each problem at its exact line:column and key path.
@Suite("robotd check refuses broken configurations")
struct BrokenConfigTests {
    @Test func the_base_file_is_valid_with_one_warning_for_estop_none() {
        let report = check(base())
        #expect(report.errors.isEmpty, "\(report)")
        #expect(report.configuration != nil)
        #expect(report.warnings.count == 1)
        expectProblem(report, .warning, at: 2, 8, "estop", "no e-stop input")
    }

    @Test func wrong_types_are_reported_at_their_values() {
        let report = check(base(replacing: [8: "      max_velocity: fast", 11: "    stop_category: one",
                                            12: "    watchdog_timeout_ms: [100]"]))
        #expect(report.configuration == nil)
        expectProblem(report, at: 8, 21, "channels[0].limits.max_velocity", "expected a number > 0, got the string `fast`")
        expectProblem(report, at: 11, 20, "channels[0].stop_category", "expected 0, 1 or 2, got the string `one`")
        expectProblem(report, at: 12, 26, "channels[0].watchdog_timeout_ms", "got a list")
    }

    @Test func a_quoted_number_and_a_yaml11_boolean_get_a_hint() {
        let report = check(base(replacing: [8: "      max_velocity: \"10\""],
                                appending: ["inputs:", "  - {name: pad, kind: evdev, path: /dev/input/event0, grab: yes}"]))
        expectProblem(report, at: 8, 21, "channels[0].limits.max_velocity", "remove the quotes")
        expectProblem(report, at: 18, 61, "inputs[0].grab", "only true and false are booleans")
    }

    @Test func an_estop_or_deadman_device_left_ungrabbed_is_a_warning_and_grabbed_by_default() {
        let report = check(base(replacing: [2: "estop: {inputs: [pad], category: 0}"],
                                appending: ["inputs:",
                                            "  - {name: pad, kind: evdev, path: /dev/input/event0, grab: false, keys: [{code: BTN_EAST, action: estop}]}",
                                            "  - {name: stick, kind: evdev, path: /dev/input/event1, grab: false, keys: [{code: BTN_TL, action: deadman}]}",
                                            "  - {name: knob, kind: evdev, path: /dev/input/event2, grab: false, keys: [{code: BTN_0, action: mode:slow}]}"]))
        expectProblem(report, .warning, at: 18, 61, "inputs[0].grab", "not grabbed")
        expectProblem(report, .warning, at: 19, 63, "inputs[1].grab", "not grabbed")
        // A device that carries neither may be shared.
        #expect(!report.warnings.contains { $0.keyPath == "inputs[2].grab" })
        let byDefault = check(base(replacing: [2: "estop: {inputs: [pad], category: 0}"],
                                   appending: ["inputs:", "  - {name: pad, kind: evdev, path: /dev/input/event0, keys: [{code: BTN_EAST, action: estop}]}"]))
        #expect(!byDefault.warnings.contains { $0.keyPath.hasSuffix(".grab") })
    }

    @Test func unknown_keys_get_a_did_you_mean() {
        let report = check(base(replacing: [1: "robot: {id: test, desciption: x}", 9: "      max_velocty: 20"],
                                appending: ["polcies: []"]))
        expectProblem(report, at: 1, 19, "robot.desciption", "unknown key `desciption`; did you mean `description`?")
        expectProblem(report, at: 9, 7, "channels[0].limits.max_velocty", "did you mean `max_velocity`?")
        expectProblem(report, at: 17, 1, "polcies", "unknown top-level section `polcies`; did you mean `policies`?")
    }

    @Test func a_key_in_the_wrong_map_says_where_it_belongs() {
        let report = check(base(replacing: [12: "    max_jerk: 50"]))
        expectProblem(report, at: 12, 5, "channels[0].max_jerk", "it belongs under `limits`")
    }

    @Test func a_channel_without_limits_safe_value_or_stop_category_is_refused() {
        let noLimits = check(base(removing: [7, 8, 9]))
        expectProblem(noLimits, at: 4, 5, "channels[0].limits", "missing")
        let noSafeValue = check(base(removing: [10]))
        expectProblem(noSafeValue, at: 4, 5, "channels[0].safe_value", "missing")
        let noStopCategory = check(base(removing: [11]))
        expectProblem(noStopCategory, at: 4, 5, "channels[0].stop_category", "missing")
        for report in [noLimits, noSafeValue, noStopCategory] { #expect(report.configuration == nil) }
    }

    @Test func a_has_flag_set_false_beside_its_value_is_refused() {
        let report = check(base(replacing: [8: "      has_velocity_limits: false\n      max_velocity: 10"]))
        expectProblem(report, at: 8, 28, "channels[0].limits.has_velocity_limits",
                      "is false but `max_velocity` is set (line 9): ros2_control would silently ignore the value")
        let enabledWithoutValue = check(base(replacing: [9: "      has_jerk_limits: true"]))
        expectProblem(enabledWithoutValue, at: 9, 24, "channels[0].limits.has_jerk_limits", "is true but `max_jerk` is missing")
    }

    @Test func limits_that_make_no_sense_for_the_interface_are_refused() {
        let noMax = check(base(replacing: [8: "      max_deceleration: 30"]))
        expectProblem(noMax, at: 8, 7, "channels[0].limits.max_velocity", "a velocity channel needs max_velocity")
        let discrete = check(base(replacing: [5: "    kind: discrete", 6: "    # no interface", 8: "      states: [0, 1]",
                                              9: "      max_velocity: 2"]))
        expectProblem(discrete, at: 9, 7, "channels[0].limits.max_velocity", "not a limit of a discrete channel")
        let inverted = check(base(replacing: [6: "    interface: position", 8: "      min_position: 3", 9: "      max_position: 1"]))
        expectProblem(inverted, at: 8, 21, "channels[0].limits.min_position", "min_position 3 is above max_position 1 (line 9)")
        let position = check(base(replacing: [6: "    interface: position", 8: "      min_position: 1", 9: "      max_position: 3"]))
        expectProblem(position, at: 10, 17, "channels[0].safe_value", "0 is outside the channel's limits")
    }

    @Test func a_moving_safe_value_and_a_missing_watchdog_are_refused_on_a_velocity_channel() {
        let report = check(base(replacing: [10: "    safe_value: 1"], removing: [12]))
        expectProblem(report, at: 10, 17, "channels[0].safe_value", "keep it moving in every stop")
        expectProblem(report, at: 4, 5, "channels[0].watchdog_timeout_ms", "without a watchdog")
    }

    @Test func an_estop_of_category_2_is_refused() {
        let report = check(base(replacing: [2: "estop: {inputs: [pad], category: 2}"], appending: [
            "inputs:",
            "  - name: pad",
            "    kind: evdev",
            "    path: /dev/input/event0",
            "    keys:",
            "      - {code: BTN_EAST, action: estop}",
        ]))
        #expect(report.errors.count == 1, "\(report)")
        expectProblem(report, at: 2, 34, "estop.category", "`2` is out of range: an emergency stop is category 0")
    }

    @Test func a_missing_estop_must_be_written_out_as_none() {
        let report = check(base(removing: [2]))
        expectProblem(report, at: 1, 1, "estop", "a robot with no e-stop input must say `estop: none`")
    }

    @Test func estop_inputs_must_exist_and_have_an_estop_key_and_every_estop_key_must_be_listed() {
        let report = check(base(replacing: [2: "estop: {inputs: [pad, pda], category: 0}"], appending: [
            "inputs:",                                                    // 17
            "  - name: pad",
            "    kind: evdev",
            "    path: /dev/input/event0",
            "    keys: [{code: BTN_START, action: reset}]",               // 21
            "  - name: panel",
            "    kind: evdev",
            "    path: /dev/input/event1",
            "    keys: [{code: BTN_SOUTH, action: estop}]",               // 25
        ]))
        expectProblem(report, at: 2, 18, "estop.inputs[0]", "input `pad` has no key with `action: estop`")
        expectProblem(report, at: 2, 23, "estop.inputs[1]", "unknown input `pda`")
        expectProblem(report, at: 25, 38, "inputs[1].keys[0].action", "not listed in `estop.inputs`: pressing it would not stop the robot")
    }

    @Test func negative_periods_and_deadlines_above_the_period_are_refused() {
        let report = check(base(appending: [
            "policies:",                      // 17
            "  - name: drive",
            "    kind: wander",
            "    period_ms: -20",             // 20
            "    channels: [wheel]",
            "    range_sensor: range",
            "  - name: slow",
            "    kind: wander",
            "    period_ms: 20",
            "    deadline_ms: 30",            // 26
            "    channels: [wheel]",
            "    range_sensor: range",
            "sensors:",
            "  - {name: range, max_age_ms: 100, reaction: hold}",
        ]))
        expectProblem(report, at: 20, 16, "policies[0].period_ms", "`-20` is out of range")
        expectProblem(report, at: 26, 18, "policies[1].deadline_ms", "30 is longer than period_ms 20")
    }

    @Test func a_policy_on_an_undeclared_channel_is_refused() {
        let report = check(base(appending: [
            "policies:",
            "  - name: drive",
            "    kind: wander",
            "    period_ms: 20",
            "    channels: [wheel, wheels]",   // 21
            "    range_sensor: range",
            "sensors:",
            "  - {name: range, max_age_ms: 100, reaction: hold}",
        ]))
        expectProblem(report, at: 21, 23, "policies[0].channels[1]", "unknown channel `wheels`: not declared under `channels`; did you mean `wheel`?")
    }

    @Test func duplicate_names_point_at_the_second_and_name_the_first_line() {
        let report = check("""
            robot: {id: test}
            estop: none
            channels:
              - name: wheel
                kind: continuous
                interface: velocity
                limits: {max_velocity: 10}
                safe_value: 0
                stop_category: 1
                watchdog_timeout_ms: 100
              - name: wheel
                kind: continuous
                interface: velocity
                limits: {max_velocity: 10}
                safe_value: 0
                stop_category: 1
                watchdog_timeout_ms: 100
            actuators:
              - name: sim
                kind: simulator
                channels: [wheel]
              - name: sim
                kind: simulator
                channels: [wheel]
            """)
        expectProblem(report, at: 11, 11, "channels[1].name", "duplicate channel name `wheel`: already declared at line 4")
        expectProblem(report, at: 22, 11, "actuators[1].name", "duplicate actuator name `sim`: already declared at line 19")
        expectProblem(report, at: 24, 16, "actuators[1].channels[0]", "already carried by actuator `sim` (line 21)")
    }

    @Test func duplicate_input_sensor_and_policy_names_point_at_the_second_and_name_the_first_line() {
        let report = check(base(appending: [
            "inputs:",                                                 // 17
            "  - {name: pad, kind: evdev, path: /dev/input/event0}",   // 18
            "  - {name: pad, kind: evdev, path: /dev/input/event1}",   // 19
            "sensors:",                                                // 20
            "  - {name: range, max_age_ms: 100, reaction: hold}",      // 21
            "  - {name: range, max_age_ms: 100, reaction: hold}",      // 22
            "policies:",                                               // 23
            "  - name: drive",                                         // 24
            "    kind: wander",
            "    period_ms: 20",
            "    channels: [wheel]",
            "    range_sensor: range",
            "  - name: drive",                                         // 29
            "    kind: wander",
            "    period_ms: 20",
            "    channels: [wheel]",
            "    range_sensor: range",
        ]))
        #expect(report.configuration == nil)
        expectProblem(report, at: 19, 12, "inputs[1].name", "duplicate input name `pad`: already declared at line 18")
        expectProblem(report, at: 22, 12, "sensors[1].name", "duplicate sensor name `range`: already declared at line 21")
        expectProblem(report, at: 29, 11, "policies[1].name", "duplicate policy name `drive`: already declared at line 24")
        // Each repeat once, and the first declarations are not blamed.
        #expect(report.errors.filter { $0.message.hasPrefix("duplicate") }.count == 3, "\(report)")
        #expect(!report.errors.contains { ["inputs[0].name", "sensors[0].name", "policies[0].name"].contains($0.keyPath) })
    }

    @Test func an_inline_password_is_refused() {
        let report = check(base(appending: ["mqtt:", "  broker: 127.0.0.1:1883", "  username: robot", "  password: secret"]))
        expectProblem(report, at: 20, 3, "mqtt.password", "use password_env or password_file")
    }

    @Test func mqtt_kinds_need_the_mqtt_section_qos_is_0_to_2_and_commands_are_never_retained() {
        let report = check(base(removing: [13, 14, 15, 16], appending: [
            "actuators:",                                                       // 13
            "  - name: relays",
            "    kind: mqtt",                                                   // 15
            "    channels:",
            "      wheel: {topic: x/set, qos: 3, retain: true}",                // 17
        ]))
        expectProblem(report, at: 15, 11, "actuators[0].kind", "needs the `mqtt:` section")
        expectProblem(report, at: 17, 34, "actuators[0].channels.wheel.qos", "`3` is out of range")
        expectProblem(report, at: 17, 37, "actuators[0].channels.wheel.retain", "never retained")
    }

    @Test func unknown_kinds_list_the_known_ones() {
        let report = check(base(replacing: [15: "    kind: simulater"]))
        let problem = expectProblem(report, at: 15, 11, "actuators[0].kind", "unknown actuator kind `simulater`; did you mean `simulator`?")
        #expect(problem?.allowed == "serial_frames, mqtt or simulator")
    }

    @Test func channels_carried_by_no_actuator_and_sensors_nobody_feeds_are_reported() {
        let report = check(base(replacing: [16: "    channels: [wheel_left]"], appending: [
            "sensors:",
            "  - {name: range, max_age_ms: 100, reaction: hold}",   // 18
            "inputs:",
            "  - name: port",
            "    kind: serial",
            "    path: /dev/ttyUSB0",
            "    codec: frame",
            "    feeds: {range: rnge}",                            // 24
        ]))
        expectProblem(report, at: 4, 11, "channels[0].name", "no actuator carries channel `wheel`")
        expectProblem(report, at: 16, 16, "actuators[0].channels[0]", "unknown channel `wheel_left`")
        expectProblem(report, .warning, at: 18, 12, "sensors[0].name", "no input feeds sensor `range`")
        expectProblem(report, at: 24, 20, "inputs[0].feeds.range", "unknown sensor `rnge`: not declared under `sensors`; did you mean `range`?")
    }

    @Test func a_workspace_must_bound_something_with_non_negative_margins_and_a_pose() {
        let neither = check(base(appending: ["workspace: {warn_margin: 0.5, stop_margin: -0.1, stop_category: 1}"]))
        expectProblem(neither, at: 17, 12, "workspace", "has neither `polygon` nor `radius`")
        expectProblem(neither, at: 17, 12, "workspace", "nothing estimates one")
        expectProblem(neither, at: 17, 44, "workspace.stop_margin", "`-0.1` is out of range")
        let twoPoints = check(base(appending: ["workspace: {polygon: [[0, 0], [1, 1]], warn_margin: 0.5, stop_margin: 0.1, stop_category: 1}"]))
        expectProblem(twoPoints, at: 17, 22, "workspace.polygon", "has 2 items, needs at least 3")
    }

    @Test func odometry_must_name_declared_sensors_and_velocity_channels() {
        let report = check(base(appending: [
            "odometry:",
            "  encoders: enc",                 // 18
            "  left_wheel: wheel",
            "  right_wheel: wheel_r",          // 20
            "  wheel_radius: 0.05",
            "  wheel_separation: 0.3",
            "  ticks_per_revolution: 1024",
        ]))
        expectProblem(report, at: 18, 13, "odometry.encoders", "unknown sensor `enc`")
        expectProblem(report, at: 20, 16, "odometry.right_wheel", "unknown channel `wheel_r`")
    }

    @Test func a_filter_has_no_period_and_a_proposing_policy_needs_one() {
        let report = check(base(appending: [
            "sensors:",
            "  - {name: range, max_age_ms: 100, reaction: hold}",
            "policies:",
            "  - name: stop",                  // 20
            "    kind: obstacle_stop",
            "    period_ms: 20",               // 22
            "    channels: [wheel]",
            "    range_sensor: range",
            "    stop_distance: 0.3",
            "  - name: drive",                 // 26
            "    kind: wander",
            "    channels: [wheel]",
            "    range_sensor: range",
        ]))
        expectProblem(report, at: 22, 5, "policies[0].period_ms", "`obstacle_stop` is a filter")
        expectProblem(report, at: 26, 5, "policies[1].period_ms", "missing: a policy that proposes commands runs periodically")
    }

    @Test func an_interlock_on_an_unknown_channel_is_refused() {
        let report = check(base(appending: [
            "sensors:",
            "  - name: temperature",
            "    max_age_ms: 1000",
            "    reaction: stop",
            "    stop_category: 0",
            "    interlocks: [{max: 60, channels: [heater]}]",   // 22
        ]))
        expectProblem(report, at: 22, 39, "sensors[0].interlocks[0].channels[0]", "unknown channel `heater`")
    }

    @Test func several_problems_are_all_reported_in_file_order() {
        let report = check("""
            robot:
              id: test
              colour: red
            scheduler:
              priority: 150
            estop:
              inputs: [pad]
              category: 2
            channels:
              - name: wheel
                kind: continuous
                interface: velocity
                limits:
                  has_velocity_limits: false
                  max_velocity: 10
                stop_category: 1
                watchdog_timeout_ms: 100
            policies:
              - name: drive
                kind: teleop
                period_ms: 0
                channels: [wheel, arm]
                input: pad
            actuators:
              - name: sim
                kind: simulator
                channels: [wheel]
            """)
        let places = report.problems.map { "\($0.severity.rawValue) \($0.line):\($0.column) \($0.keyPath)" }
        #expect(places == [
            "error 3:3 robot.colour",
            "error 5:13 scheduler.priority",
            "error 7:12 estop.inputs[0]",
            "error 8:13 estop.category",
            "error 10:5 channels[0].safe_value",
            "error 14:7 channels[0].limits.max_acceleration",
            "error 14:28 channels[0].limits.has_velocity_limits",
            "error 19:5 policies[0].max_linear",
            "error 19:5 policies[0].max_angular",
            "error 19:5 policies[0].critical",
            "error 21:16 policies[0].period_ms",
            "error 22:23 policies[0].channels[1]",
            "error 23:12 policies[0].input",
        ], "\(report)")
        #expect(report.summary == "test.yaml: 13 errors, 0 warnings: refused")
        #expect(report.configuration == nil)
    }

    @Test func each_problem_prints_as_file_line_column_severity_path_message_allowed() {
        let report = check(base(replacing: [11: "    stop_category: 3"]), file: "robot.yaml")
        #expect(report.problems.map(\.description) == [
            "robot.yaml:2:8: warning: estop: no e-stop input: only software stops (watchdogs, interlocks, remote stop) can stop this robot; have a hard-wired e-stop that cuts power",
            "robot.yaml:11:20: error: channels[0].stop_category: `3` is out of range: IEC 60204-1: 0 power off at once, 1 controlled stop then power off, 2 controlled stop, power kept (allowed: 0, 1 or 2)",
        ])
    }
}

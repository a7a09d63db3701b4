import RobotConfig
import Testing

/// What happens before the schema: syntax, duplicate keys, anchors, scalars.
@Suite("YAML reading: syntax, duplicate keys, aliases, scalars")
struct YAMLReadingTests {
    @Test func a_syntax_error_is_reported_at_its_place() {
        let report = check("robot:\n  id: a\n channels: x\n")
        #expect(report.problems.count == 1)
        expectProblem(report, at: 3, 2, "", "YAML syntax: did not find expected key")
    }

    @Test func a_tab_in_the_indentation_is_named() {
        let report = check("robot:\n\tid: a\n")
        let problem = expectProblem(report, at: 2, 1, "", "YAML syntax")
        #expect(problem?.allowed == "spaces: a tab cannot indent YAML")
    }

    @Test func an_empty_file_is_one_error() {
        let report = check("")
        expectProblem(report, at: 1, 1, "", "the file is empty")
    }

    @Test func every_duplicate_key_is_reported_at_the_repeat_and_the_rest_is_still_checked() {
        let report = check(base(replacing: [1: "robot: {id: test, id: again}", 11: "    stop_category: 1\n    stop_category: 0",
                                            16: "    channels: [whel]"]))
        expectProblem(report, at: 1, 19, "robot.id", "duplicate key `id`: already set at line 1")
        expectProblem(report, at: 12, 5, "channels[0].stop_category", "duplicate key `stop_category`: already set at line 11")
        // Checking went on past the duplicates.
        expectProblem(report, at: 17, 16, "actuators[0].channels[0]", "unknown channel `whel`")
    }

    @Test func a_duplicate_in_a_list_item_is_found_below_the_dash() {
        let report = check(base(replacing: [14: "  - name: sim\n    name: other"]))
        expectProblem(report, at: 15, 5, "actuators[0].name", "duplicate key `name`: already set at line 14")
    }

    @Test func aliases_are_resolved_and_merge_keys_refused() {
        let shared = check(base(replacing: [7: "    limits: &wheel_limits", 16: "    channels: [wheel, other]"], appending: [
            "    # a second channel reusing the first one's limits",
            "more: *wheel_limits",
        ]))
        expectProblem(shared, at: 18, 1, "more", "unknown top-level section `more`")
        let merge = check(base(replacing: [14: "  - <<: {name: sim}"]))
        expectProblem(merge, at: 14, 5, "actuators[0]", "merge keys (`<<`) are not supported")
    }

    @Test func an_alias_reuses_a_whole_value_and_decodes() throws {
        let report = check("""
            robot: {id: test}
            estop: none
            channels:
              - name: left
                kind: continuous
                interface: velocity
                limits: &wheel {max_velocity: 10, max_acceleration: 20}
                safe_value: 0
                stop_category: 1
                watchdog_timeout_ms: 100
              - name: right
                kind: continuous
                interface: velocity
                limits: *wheel
                safe_value: 0
                stop_category: 1
                watchdog_timeout_ms: 100
            actuators:
              - {name: sim, kind: simulator, channels: [left, right]}
            """)
        let configuration = try #require(report.configuration, "\(report)")
        #expect(configuration.channels[1].limits.maxVelocity == 10)
        #expect(configuration.channels[1].limits.maxAcceleration == 20)
    }

    @Test func only_true_and_false_are_booleans_and_words_like_off_stay_words() throws {
        // YAML 1.1 would read [off, on] as [false, true]; robotd reads YAML 1.2's core schema.
        let report = check(base(replacing: [5: "    kind: discrete", 6: "    # states below", 8: "      states: [0, 1]",
                                            9: "      min_on_time_s: 1"],
                                removing: [13, 14, 15, 16],
                                appending: [
                                    "mqtt: {broker: 127.0.0.1:1883}",
                                    "actuators:",
                                    "  - name: relays",
                                    "    kind: mqtt",
                                    "    channels:",
                                    "      wheel: {topic: relay/set, states: [off, on]}",
                                ]))
        let configuration = try #require(report.configuration, "\(report)")
        #expect(configuration.actuators[0].settings["channels"]?["wheel"]?["states"] == .list([.string("off"), .string("on")]))
    }

    @Test func non_finite_numbers_are_refused() {
        let report = check(base(replacing: [8: "      max_velocity: .inf"]))
        expectProblem(report, at: 8, 21, "channels[0].limits.max_velocity", "`.inf` is not a finite number")
    }

    @Test func a_null_value_is_refused_rather_than_read_as_no_limit() {
        let report = check(base(replacing: [8: "      max_velocity:"]))
        expectProblem(report, at: 8, 20, "channels[0].limits.max_velocity", "has no value")
    }

    @Test func edit_distance_counts_insertions_deletions_substitutions_and_transpositions() {
        #expect(ConfigurationSchema.root.count == 15)
        let report = check(base(replacing: [9: "      max_accelertaion: 20"]))
        expectProblem(report, at: 9, 7, "channels[0].limits.max_accelertaion", "did you mean `max_acceleration`?")
        let far = check(base(replacing: [9: "      speed: 20"]))
        let problem = expectProblem(far, at: 9, 7, "channels[0].limits.speed", "unknown key `speed`")
        #expect(problem?.message.contains("did you mean") == false)
    }
}

import RobotConfig
import Testing

/// `mqtt.prefix` and `estop.remote` (stop and reset topics, `reset_users`): a broken value is
/// reported at its exact line:column with its key path.
@Suite("robotd check: the inbound topics' keys")
struct InboundTopicsCheckTests {
    /// A valid file with a remote stop and reset users; tests replace lines (1-based).
    static let lines = [
        "robot: {id: test}",                            // 1
        "mqtt:",                                        // 2
        "  broker: 127.0.0.1:1883",                     // 3
        "  prefix: plant/7",                            // 4
        "estop:",                                       // 5
        "  inputs: []",                                 // 6
        "  category: 1",                                // 7
        "  remote:",                                    // 8
        "    category: 1",                              // 9
        "    reset_users: [operator, viewer]",          // 10
        "    heartbeat_ms: 1000",                       // 11
    ] + baseLines.dropFirst(2)

    static func file(replacing replacements: [Int: String] = [:], removing removed: Set<Int> = []) -> String {
        lines.enumerated().compactMap { i, line in removed.contains(i + 1) ? nil : replacements[i + 1] ?? line }.joined(separator: "\n") + "\n"
    }

    @Test func the_file_is_clean_and_its_topics_follow_the_prefix() throws {
        let report = check(Self.file())
        #expect(report.problems.isEmpty, "\(report)")
        let configuration = try #require(report.configuration)
        #expect(configuration.topicPrefix == "plant/7/")
        #expect(configuration.inboundTopics?.stop == "plant/7/estop")
        #expect(configuration.inboundTopics?.resetTopic(user: "operator") == "plant/7/estop/reset/operator")
        guard case .configured(let e) = configuration.estop else { Issue.record("no estop"); return }
        #expect(e.remote?.resetUsers == ["operator", "viewer"])
    }

    @Test func the_remote_stop_path_is_supervised_end_to_end_or_says_none() throws {
        let configuration = try #require(check(Self.file()).configuration)
        guard case .configured(let e) = configuration.estop else { Issue.record("no estop"); return }
        #expect(e.remote?.heartbeatMs == 1000 && configuration.inboundTopics?.alive == "plant/7/estop/alive")
        // Left out: an error at the remote map (a deaf stop path would show nothing).
        expectProblem(check(Self.file(removing: [11])), at: 9, 5, "estop.remote.heartbeat_ms", "missing")
        // Written out as none: allowed, with a warning naming what is lost.
        let none = check(Self.file(replacing: [11: "    heartbeat_ms: none"]))
        #expect(none.errors.isEmpty, "\(none)")
        expectProblem(none, .warning, at: 11, 19, "estop.remote.heartbeat_ms", "deaf to the stop")
        expectProblem(check(Self.file(replacing: [11: "    heartbeat_ms: 10"])), at: 11, 19, "estop.remote.heartbeat_ms", "out of range")
    }

    @Test func a_prefix_with_a_wildcard_or_a_dollar_is_refused() {
        expectProblem(check(Self.file(replacing: [4: "  prefix: plant/+/x"])), at: 4, 11, "mqtt.prefix", "has a wildcard")
        expectProblem(check(Self.file(replacing: [4: "  prefix: $SYS/robots"])), at: 4, 11, "mqtt.prefix", "the broker's own")
        expectProblem(check(Self.file(replacing: [4: "  prefix: [plant]"])), at: 4, 11, "mqtt.prefix", "expected a string")
    }

    @Test func a_reset_user_that_cannot_be_a_topic_level_or_is_listed_twice_is_refused() {
        let slash = check(Self.file(replacing: [10: "    reset_users: [operator, \"a/b\"]"]))
        expectProblem(slash, at: 10, 29, "estop.remote.reset_users[1]", "cannot be an MQTT user in a topic level")
        #expect(slash.configuration == nil)
        expectProblem(check(Self.file(replacing: [10: "    reset_users: [\"\", viewer]"])), at: 10, 19, "estop.remote.reset_users[0]",
                      "cannot be an MQTT user")
        expectProblem(check(Self.file(replacing: [10: "    reset_users: [operator, operator]"])), at: 10, 29,
                      "estop.remote.reset_users[1]", "listed twice (line 10)")
        expectProblem(check(Self.file(replacing: [10: "    reset_users: operator"])), at: 10, 18, "estop.remote.reset_users", "expected a list")
        expectProblem(check(Self.file(replacing: [10: "    reset_users: [operator, 7]"])), at: 10, 29, "estop.remote.reset_users[1]",
                      "expected a string")
    }

    @Test func without_reset_users_a_warning_says_every_remote_reset_is_refused() {
        let report = check(Self.file(removing: [10]))
        #expect(report.errors.isEmpty && report.configuration != nil, "\(report)")
        expectProblem(report, .warning, at: 8, 3, "estop.remote", "every remote reset request is refused")
    }

    @Test func stop_and_reset_topics_with_wildcards_empty_or_colliding_are_refused() {
        expectProblem(check(Self.file(replacing: [9: "    category: 1\n    stop_topic: plant/#"])), at: 10, 17,
                      "estop.remote.stop_topic", "has a wildcard")
        expectProblem(check(Self.file(replacing: [9: "    category: 1\n    reset_topic: \"\""])), at: 10, 18,
                      "estop.remote.reset_topic", "is empty")
        // A stop topic that is a reset request's topic: every stop would also be read as a request.
        expectProblem(check(Self.file(replacing: [9: "    category: 1\n    stop_topic: plant/7/estop/reset/bob"])), at: 10, 17,
                      "estop.remote.stop_topic", "is a reset request's topic")
        expectProblem(check(Self.file(replacing: [9: "    category: 1\n    reset_topic: plant/7"])), at: 10, 18,
                      "estop.remote.reset_topic", "`plant/7/estop` is a reset request's topic")
    }

    @Test func the_remote_stop_still_needs_its_category_and_the_mqtt_section() {
        expectProblem(check(Self.file(removing: [9])), at: 9, 5, "estop.remote.category", "missing")
        expectProblem(check(Self.file(removing: [2, 3, 4])), .error, at: 5, 3, "estop.remote", "needs the `mqtt:` section")
    }
}

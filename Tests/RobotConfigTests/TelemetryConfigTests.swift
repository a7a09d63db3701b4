import RobotConfig
import Testing

/// `mqtt.telemetry`: checked with the rest of the file, every problem at its line:column.
@Suite("robotd check: mqtt.telemetry")
struct TelemetryConfigTests {
    @Test func a_valid_telemetry_section_decodes_with_its_defaults_for_what_it_leaves_out() throws {
        let report = check(base(appending: ["mqtt:", "  broker: 127.0.0.1:1883", "  prefix: fleet/rover-1/", "  telemetry:",
                                            "    interval_ms: 250", "    miss_ratio_warn: 0.01"]))
        #expect(report.errors.isEmpty, "\(report)")
        let telemetry = try #require(report.configuration?.mqtt?.telemetry)
        #expect(telemetry.intervalMs == 250 && telemetry.missRatioWarn == 0.01)
        // One prefix for every robotd topic, telemetry and inbound alike.
        #expect(report.configuration?.topicPrefix == "fleet/rover-1/")
        #expect(telemetry.enabled && telemetry.maxQueuedMessages == 256 && telemetry.eventQos == 1 && telemetry.inputGapMs == nil)
        // Without a prefix: the robot's id.
        #expect(check(base(appending: ["mqtt:", "  broker: 127.0.0.1:1883"])).configuration?.topicPrefix == "robotd/test/")
    }

    @Test func wrong_values_are_reported_at_their_place() {
        let report = check(base(appending: ["mqtt:", "  broker: 127.0.0.1:1883", "  telemetry:",
                                            "    interval_ms: 0",                // 20
                                            "    qos: 3",                        // 21
                                            "    prefix: robotd/+/",             // 22: the prefix is mqtt.prefix
                                            "    miss_ratio_warn: 0.5",          // 23
                                            "    miss_ratio_error: 0.2",         // 24
                                            "    max_queued_mesages: 10"]))      // 25
        #expect(report.configuration == nil)
        expectProblem(report, at: 20, 18, "mqtt.telemetry.interval_ms", "out of range")
        expectProblem(report, at: 21, 10, "mqtt.telemetry.qos", "out of range")
        expectProblem(report, at: 22, 5, "mqtt.telemetry.prefix", "unknown key")
        expectProblem(report, at: 24, 23, "mqtt.telemetry.miss_ratio_error", "below miss_ratio_warn")
        expectProblem(report, at: 25, 5, "mqtt.telemetry.max_queued_mesages", "did you mean `max_queued_messages`?")
    }

    /// The floor (docs/mqtt.md, "How often"): below 100 ms the telemetry thread's share of a core
    /// stops being small, so `check` refuses it, saying why and what is allowed; 100 passes.
    @Test(arguments: [2.0, 10, 50, 99.5])
    func an_interval_below_the_floor_is_refused_with_what_is_allowed(interval: Double) throws {
        let report = check(base(appending: ["mqtt:", "  broker: 127.0.0.1:1883", "  telemetry:", "    interval_ms: \(interval)"]))
        #expect(report.configuration == nil)
        let problem = try #require(expectProblem(report, at: 20, 18, "mqtt.telemetry.interval_ms", "out of range"))
        #expect(problem.message.contains("at least 100"), "\(problem)")
        #expect(problem.allowed?.contains("100") == true, "\(problem)")
        #expect(TelemetrySettings.minimumIntervalMs == 100)
        let floor = check(base(appending: ["mqtt:", "  broker: 127.0.0.1:1883", "  telemetry:", "    interval_ms: 100"]))
        #expect(floor.errors.isEmpty, "\(floor)")
        #expect(floor.configuration?.mqtt?.telemetry?.intervalMs == 100)
    }
}

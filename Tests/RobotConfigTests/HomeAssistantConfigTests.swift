import RobotConfig
import Testing

/// `mqtt.home_assistant`: `true`, `false` or a map, checked with the rest of the file.
@Suite("robotd check: mqtt.home_assistant")
struct HomeAssistantConfigTests {
    static let mqtt = ["mqtt:", "  broker: 127.0.0.1:1883"]

    @Test func true_means_the_default_prefix_a_map_sets_it_false_and_absent_mean_off() throws {
        let on = check(base(appending: Self.mqtt + ["  home_assistant: true"]))
        #expect(on.errors.isEmpty, "\(on)")
        #expect(try #require(on.configuration?.mqtt?.homeAssistant).discoveryPrefix == "homeassistant")

        let map = check(base(appending: Self.mqtt + ["  home_assistant: {discovery_prefix: ha/lab}"]))
        #expect(map.errors.isEmpty, "\(map)")
        #expect(map.configuration?.mqtt?.homeAssistant?.discoveryPrefix == "ha/lab")

        let off = check(base(appending: Self.mqtt + ["  home_assistant: false"]))
        #expect(off.errors.isEmpty, "\(off)")
        #expect(off.configuration != nil && off.configuration?.mqtt?.homeAssistant == nil)
        #expect(check(base(appending: Self.mqtt)).configuration?.mqtt?.homeAssistant == nil)
    }

    @Test func wrong_values_are_reported_at_their_place() {
        let word = check(base(appending: Self.mqtt + ["  home_assistant: yes"]))      // 19
        expectProblem(word, at: 19, 19, "mqtt.home_assistant", "only true and false are booleans")
        let typo = check(base(appending: Self.mqtt + ["  home_assistant: {discovery_prefx: ha}"]))
        expectProblem(typo, at: 19, 20, "mqtt.home_assistant.discovery_prefx", "did you mean `discovery_prefix`?")
        let wildcard = check(base(appending: Self.mqtt + ["  home_assistant: {discovery_prefix: ha/#}"]))
        expectProblem(wildcard, at: 19, 38, "mqtt.home_assistant.discovery_prefix", "wildcard")
        let slash = check(base(appending: Self.mqtt + ["  home_assistant: {discovery_prefix: homeassistant/}"]))
        expectProblem(slash, at: 19, 38, "mqtt.home_assistant.discovery_prefix", "must not be empty, start or end with `/`")
    }

    @Test func discovery_without_telemetry_is_an_error_because_its_entities_read_the_telemetry_topics() {
        let report = check(base(appending: Self.mqtt + ["  telemetry: {enabled: false}", "  home_assistant: true"]))
        #expect(report.configuration == nil)
        expectProblem(report, at: 19, 24, "mqtt.telemetry.enabled", "mqtt.home_assistant is on")
        // Off with telemetry off: fine.
        #expect(check(base(appending: Self.mqtt + ["  telemetry: {enabled: false}", "  home_assistant: false"])).errors.isEmpty)
    }

    /// A sensor's `unit`: an optional string, checked like every key (type and place), then
    /// decoded for Home Assistant and the `sensors` topic.
    static func sensor(_ unitLine: String) -> String {
        base(appending: ["sensors:", "  - name: temperature", "    max_age_ms: 1000", "    reaction: warn", unitLine])  // 17…21
    }

    @Test func a_sensor_unit_is_an_optional_string_reported_at_its_place_when_wrong() throws {
        let ok = check(Self.sensor("    unit: °C"))
        #expect(ok.errors.isEmpty, "\(ok)")
        #expect(ok.configuration?.sensors.first?.unit == "°C")
        let none = check(Self.sensor("    valid_range: [-40, 150]"))
        #expect(none.errors.isEmpty, "\(none)")
        #expect(try #require(none.configuration?.sensors.first).unit == nil)
        let quoted = check(Self.sensor("    unit: \"%\""))
        #expect(quoted.configuration?.sensors.first?.unit == "%", "\(quoted)")

        expectProblem(check(Self.sensor("    unit: 5")), at: 21, 11, "sensors[0].unit", "expected a string")
        expectProblem(check(Self.sensor("    unit: [m, s]")), at: 21, 11, "sensors[0].unit", "expected a string")
        expectProblem(check(Self.sensor("    unti: m")), at: 21, 5, "sensors[0].unti", "did you mean `unit`?")
        expectProblem(check(Self.sensor("    unit: \"\"")), at: 21, 11, "sensors[0].unit", "no unit Home Assistant can show")
        expectProblem(check(Self.sensor("    unit: \"\\tm\"")), at: 21, 11, "sensors[0].unit", "control character")
        expectProblem(check(Self.sensor("    unit: " + String(repeating: "m", count: 33))), at: 21, 11, "sensors[0].unit", "longer than 32")
    }
}

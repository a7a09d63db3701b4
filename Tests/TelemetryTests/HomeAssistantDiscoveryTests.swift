import Foundation
import RTScheduler
import Telemetry
import Testing

/// The discovery configs as values: topics, ids, the keys Home Assistant needs. (Whether their
/// templates work on real payloads is the integration test's job, with Jinja2.)
@Suite("Home Assistant discovery configs")
struct HomeAssistantDiscoveryTests {
    static let rig = HomeAssistantDiscovery.Robot(
        robotID: "rig-1", topics: TelemetryTopics(robotID: "rig-1"), intervalMs: 1000, criticalTasks: ["thermostat", "guard"],
        sensors: [.init(name: "temperature", unit: "°C"), .init(name: "door")], remoteStopTopic: "robotd/rig-1/estop")

    static func json(_ message: HomeAssistantDiscovery.Message) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(message.payload)) as? [String: Any])
    }

    @Test func one_device_with_a_stopped_sensor_a_p99_and_a_miss_count_per_critical_task_a_sensor_per_reading_and_the_button() throws {
        let discovery = HomeAssistantDiscovery(Self.rig)
        #expect(discovery.messages.map(\.topic) == [
            "homeassistant/binary_sensor/robotd_rig-1/stopped/config",
            "homeassistant/sensor/robotd_rig-1/thermostat_response_p99/config",
            "homeassistant/sensor/robotd_rig-1/thermostat_misses/config",
            "homeassistant/sensor/robotd_rig-1/guard_response_p99/config",
            "homeassistant/sensor/robotd_rig-1/guard_misses/config",
            "homeassistant/sensor/robotd_rig-1/sensor_temperature/config",
            "homeassistant/sensor/robotd_rig-1/sensor_door/config",
            "homeassistant/button/robotd_rig-1/remote_stop/config",
        ])
        var ids: Set<String> = []
        for message in discovery.messages {
            let c = try Self.json(message)
            let id = try #require(c["unique_id"] as? String)
            #expect(ids.insert(id).inserted, "unique_id \(id) twice")
            #expect(id == "robotd_rig-1_" + message.objectID)
            let device = try #require(c["device"] as? [String: Any])
            #expect(device["identifiers"] as? [String] == ["robotd_rig-1"])
            #expect(device["manufacturer"] as? String == "robotd" && device["model"] as? String == "robotd")
            #expect(device["sw_version"] as? String == RobotdVersion.current && device["name"] as? String == "rig-1")
            if message.component == "button" {
                // Available only while robotd is online and its links are up: a press then reaches it.
                #expect(c["availability_topic"] == nil && c["availability_mode"] as? String == "all")
                let entries = try #require(c["availability"] as? [[String: Any]])
                #expect(entries.map { $0["topic"] as? String } == ["robotd/rig-1/status", "robotd/rig-1/state"])
                #expect((entries[1]["value_template"] as? String)?.contains("value_json.estop.links_up") == true)
                continue
            }
            #expect(c["availability_topic"] as? String == "robotd/rig-1/status")
            #expect(c["payload_available"] as? String == "online" && c["payload_not_available"] as? String == "offline")
            #expect(c["value_template"] is String)
            let state = try #require(c["state_topic"] as? String)
            #expect(["robotd/rig-1/state", "robotd/rig-1/deadlines", "robotd/rig-1/sensors"].contains(state))
        }
        let stopped = try Self.json(discovery.messages[0])
        #expect(stopped["device_class"] as? String == "problem" && stopped["state_topic"] as? String == "robotd/rig-1/state")
        let p99 = try Self.json(discovery.messages[1])
        #expect(p99["unit_of_measurement"] as? String == "\u{03BC}s" && p99["state_class"] as? String == "measurement")
        #expect(p99["expire_after"] as? Int == 3)
        let misses = try Self.json(discovery.messages[2])
        #expect(misses["state_class"] as? String == "total_increasing" && misses["unit_of_measurement"] == nil)  // a count: no unit
        // A sensor carries its configured unit; one without a unit has none.
        let temperature = try Self.json(discovery.messages[5])
        #expect(temperature["unit_of_measurement"] as? String == "°C" && temperature["state_class"] as? String == "measurement")
        let door = try Self.json(discovery.messages[6])
        #expect(door["unit_of_measurement"] == nil && door["state_class"] as? String == "measurement")
        let button = try Self.json(discovery.messages[7])
        #expect(button["command_topic"] as? String == "robotd/rig-1/estop" && button["payload_press"] as? String == "stop")
        #expect((button["name"] as? String)?.contains("not an e-stop") == true)
        #expect(button["retain"] as? Bool == false)
    }

    @Test func without_a_remote_stop_there_is_no_button_and_the_prefix_is_the_configurations() {
        var robot = Self.rig
        robot.remoteStopTopic = nil
        robot.discoveryPrefix = "ha/test"
        let discovery = HomeAssistantDiscovery(robot)
        #expect(!discovery.messages.contains { $0.component == "button" })
        #expect(discovery.messages.allSatisfy { $0.topic.hasPrefix("ha/test/") && $0.topic.hasSuffix("/config") })
    }

    @Test func names_become_object_ids_that_stay_unique_and_templates_quote_them() throws {
        var robot = Self.rig
        robot.criticalTasks = ["it's hot", "it_s hot"]
        robot.sensors = []
        let discovery = HomeAssistantDiscovery(robot)
        #expect(discovery.messages.map(\.objectID) == ["stopped", "it_s_hot_response_p99", "it_s_hot_misses", "it_s_hot_response_p99_2",
                                                       "it_s_hot_misses_2", "remote_stop"])
        let template = try #require(try Self.json(discovery.messages[1])["value_template"] as? String)
        #expect(template.contains("t.name == 'it\\'s hot'"))
    }

    @Test func expiry_is_three_intervals_in_whole_seconds() {
        #expect(HomeAssistantDiscovery.expireAfter(intervalMs: 1000) == 3)
        #expect(HomeAssistantDiscovery.expireAfter(intervalMs: 200) == 1)
        #expect(HomeAssistantDiscovery.expireAfter(intervalMs: 10) == 1)
        #expect(HomeAssistantDiscovery.expireAfter(intervalMs: 2500) == 8)
    }

    @Test func removal_is_an_empty_payload_on_every_topic() {
        let discovery = HomeAssistantDiscovery(Self.rig)
        #expect(discovery.removals.map(\.topic) == discovery.messages.map(\.topic))
        #expect(discovery.removals.allSatisfy { $0.payload.isEmpty })
        #expect(HomeAssistantDiscovery.nodeFilter(discoveryPrefix: "homeassistant", robotID: "rig-1") == "homeassistant/+/robotd_rig-1/+/config")
    }

    @Test func sensors_leave_an_unknown_value_out() throws {
        var reporter = SensorsReporter()
        let clock = TelemetryClock(origin: .zero, monotonicNow: .zero, unixNow: 1_000)
        let payload = reporter.sensors([("temperature", 36.5), ("humidity", .nan)], at: .zero, clock: clock)
        let text = String(decoding: TelemetryJSON.encode(payload), as: UTF8.self)
        #expect(text == #"{"sensors":[{"name":"temperature","value":36.5},{"name":"humidity"}],"seq":1,"t_unix_s":1000}"#)
    }

    @Test func sensors_carry_their_configured_unit_even_when_the_value_is_unknown() throws {
        var reporter = SensorsReporter(units: ["temperature": "°C", "humidity": "%"])
        let clock = TelemetryClock(origin: .zero, monotonicNow: .zero, unixNow: 1_000)
        let payload = reporter.sensors([("temperature", 36.5), ("humidity", .nan), ("door", 1)], at: .zero, clock: clock)
        let text = String(decoding: TelemetryJSON.encode(payload), as: UTF8.self)
        #expect(text == #"{"sensors":[{"name":"temperature","unit":"°C","value":36.5},{"name":"humidity","unit":"%"},{"name":"door","value":1}],"seq":1,"t_unix_s":1000}"#)
    }
}

import Foundation
import AIOSRobot
import RobotConfig
import Testing

/// Every file in examples/ passes, and decodes into what it says.
@Suite("Example configurations")
struct ExampleConfigTests {
    static let examples: [String] = {
        let folder = repositoryRoot.appendingPathComponent("examples")
        let names = (try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []
        return names.filter { $0.hasSuffix(".yaml") }.sorted()
    }()

    func load(_ name: String) -> ConfigurationReport {
        // As `robotd check` reads it: the validator, then the runtime's dry build.
        RobotFileCheck.load(path: repositoryRoot.appendingPathComponent("examples/\(name)").path)
    }

    @Test func the_five_examples_are_there() {
        #expect(Set(Self.examples).isSuperset(of: ["rover-sim.yaml", "rover-waypoints-sim.yaml", "iot-rig-sim.yaml",
                                                   "rover-hardware.yaml", "iot-rig-zigbee2mqtt.yaml"]))
    }

    /// docs/configuration.md's table of examples names every file in examples/, and says how many.
    @Test func the_configuration_guide_lists_every_example() throws {
        let doc = try String(contentsOf: repositoryRoot.appendingPathComponent("docs/configuration.md"), encoding: .utf8)
        let rows = doc.split(separator: "\n").filter { $0.hasPrefix("| `") && $0.contains(".yaml` |") }
        let listed = Set(rows.compactMap { $0.split(separator: "`").dropFirst().first.map(String.init) })
        #expect(listed == Set(Self.examples), "listed \(listed.sorted()), in examples/ \(Self.examples)")
        let words = ["one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten"]
        let count = words.indices.contains(Self.examples.count - 1) ? words[Self.examples.count - 1] : "\(Self.examples.count)"
        #expect(doc.contains("The \(count) files in [`examples/`]"), "the guide's count is not \(count)")
    }

    /// The weaker choices an example writes out on purpose, each named by a warning (a simulator
    /// drives at once); nothing else may be reported.
    static let writtenOutChoices: [String: [String]] = [
        "rover-sim.yaml": ["safety.start_latched"],
        "rover-waypoints-sim.yaml": ["safety.start_latched"],
        "iot-rig-sim.yaml": ["safety.start_latched", "estop.remote.heartbeat_ms"],
    ]

    @Test(arguments: examples)
    func every_example_passes_without_errors_and_warns_only_of_the_choices_it_writes_out(name: String) {
        let report = load(name)
        #expect(report.errors.isEmpty, "\(report)")
        #expect(report.warnings.map(\.keyPath) == Self.writtenOutChoices[name] ?? [], "\(report)")
        #expect(report.configuration != nil)
    }

    @Test func rover_sim_decodes_into_its_values_with_the_kinds_keys_in_file_order() throws {
        let c = try #require(load("rover-sim.yaml").configuration)
        #expect(c.robot.id == "rover-sim")
        #expect(c.safety.startLatched == false)
        #expect(c.safety.criticalMisses == 5)
        #expect(c.channels.map(\.name) == ["wheel_left", "wheel_right"])
        #expect(c.channels[0].limits.maxVelocity == 12)
        #expect(c.channels[0].limits.hasVelocityLimits == true)
        #expect(c.channels[0].motionMonitor?.tolerance == 3)
        #expect(c.channels[0].motionMonitor?.timeMs == 250)
        #expect(c.odometry?.ticksPerRevolution == 2048)
        #expect(c.workspace?.polygon?.count == 4)
        guard case .configured(let estop) = c.estop else {
            Issue.record("rover-sim has an e-stop")
            return
        }
        #expect(estop.inputs == ["gamepad"])
        #expect(estop.category == 0)
        #expect(c.inputs[0].queue == QueueSettings(capacity: 8, overflow: "drop_oldest"))
        guard case .map(let feeds) = c.inputs[0].settings["feeds"] else {
            Issue.record("feeds is a map")
            return
        }
        #expect(feeds.map(\.key) == ["range", "wheel_encoders", "imu"])
        guard case .map(let settings) = c.inputs[1].settings else { return }
        #expect(settings.map(\.key) == ["path", "axes", "keys"])
        #expect(c.policies.map(\.name) == ["teleop", "wander", "route", "obstacle_stop"])
        #expect(c.abilities.map(\.name) == ["goto", "patrol", "stop", "wait"] && c.planner.builtin && c.planner.backends.isEmpty)
        #expect(c.policies[0].priority == 100)
        #expect(c.actuators[0].settings["channels"]?["wheel_right"]?["motor"] == .number(1))
    }

    @Test func the_zigbee2mqtt_rig_keeps_its_password_out_of_the_file() throws {
        let c = try #require(load("iot-rig-zigbee2mqtt.yaml").configuration)
        #expect(c.mqtt?.passwordFile == "/etc/robotd/mqtt-password")
        #expect(c.mqtt?.caFile != nil)
        #expect(c.actuators[0].settings["channels"]?["heater"]?["states"] == .list([.string("OFF"), .string("ON")]))
        #expect(c.actuators[0].settings["channels"]?["heater"]?["payload"] == .string(#"{"state": "{value}"}"#))
    }

    @Test func the_hardware_rover_starts_latched_with_a_grabbed_gamepad_as_estop() throws {
        let c = try #require(load("rover-hardware.yaml").configuration)
        #expect(c.safety.startLatched)
        #expect(c.inputs.first { $0.name == "gamepad" }?.settings["grab"] == .bool(true))
        #expect(c.inputs.first { $0.name == "controller" }?.settings["path"] == .string("usb-serial:A50285BI"))
        guard case .configured(let estop) = c.estop else {
            Issue.record("the hardware rover has an e-stop")
            return
        }
        #expect(estop.inputs == ["gamepad"])
    }
}

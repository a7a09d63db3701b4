import Actuators
import Foundation
import Glibc
import RTScheduler
import RobotConfig
import RobotSim
import SafetyGuard
import Synchronization
import Telemetry
import Testing
import TestSupport
import Transports
@testable import AIOSRobot

/// The repository's root (scripts/peers, .build/venv).
private let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
private let venvPython = repository.appendingPathComponent(".build/venv/bin/python3").path
private let haPeer = repository.appendingPathComponent("scripts/peers/ha_peer.py").path

/// examples/iot-rig-sim.yaml on a test broker with Home Assistant discovery on, telemetry every
/// 200 ms and its thermostat every 100 ms (deadline 20 ms).
private func rigWithDiscovery(in directory: String, port: Int) throws -> RobotConfiguration {
    let configuration = try Examples.temporaryCopy("iot-rig-sim.yaml", in: directory) {
        $0 = $0.replacingOccurrences(of: "broker: 127.0.0.1:18830", with: "broker: 127.0.0.1:\(port)")
            .replacingOccurrences(of: "client_id: robotd-iot-rig-sim", with: "client_id: robotd-ha-test-\(getpid())")
            .replacingOccurrences(of: "  keepalive_s: 5\n", with: "  keepalive_s: 5\n  telemetry: {interval_ms: 200}\n  home_assistant: true\n")
            .replacingOccurrences(of: "    period_ms: 1000\n    deadline_ms: 100\n", with: "    period_ms: 100\n    deadline_ms: 20\n")
    }
    guard configuration.mqtt?.homeAssistant != nil, configuration.mqtt?.telemetry?.intervalMs == 200,
          configuration.policies.first?.periodMs == 100 else {
        throw KindError("the example's broker, telemetry or period was not replaced")
    }
    return configuration
}

/// The peer in `--retained-only` mode: the discovery configs the broker still holds retained.
private func retainedConfigs(port: Int) throws -> [String] {
    let peer = try Subprocess(venvPython, [haPeer, "--broker", "127.0.0.1:\(port)", "--node", "-", "--retained-only"])
    #expect(peer.wait(seconds: 20) == 0, "peer: \(peer.stderr)")
    let line = try #require(peer.jsonLines.last, "no answer from the peer: \(peer.stdout) \(peer.stderr)")
    return try #require(line["retained"] as? [String])
}

@Suite("Home Assistant discovery")
struct HomeAssistantEntityTests {
    /// `--ha-remove` computes the entities from the configuration alone: its critical tasks must be
    /// the ones the scheduler really has.
    @Test(arguments: ["iot-rig-sim.yaml", "rover-sim.yaml", "rover-waypoints-sim.yaml"])
    func the_critical_tasks_named_from_the_configuration_are_the_schedulers(example: String) throws {
        let configuration = try Examples.configuration(example)
        let clock = VirtualClock()
        let scheduler = Scheduler(clock: clock)
        let channels = configuration.channels.indices.map { ChannelID(index: $0) }
        _ = try RobotRuntime(configuration: configuration, scheduler: scheduler) { seal in
            try ActuatorSet(seal: seal, backends: [RecordingBackend(name: "test", channels: channels)], clock: clock)
        }
        let critical = scheduler.snapshot().tasks.filter(\.critical).map(\.name)
        #expect(!critical.isEmpty)
        #expect(HomeAssistantEntities.criticalTasks(configuration).sorted() == critical.sorted())
    }
}

@Suite("Home Assistant discovery over a real broker", .serialized, .enabled(if: MosquittoBroker.isInstalled, "mosquitto is not installed"))
struct HomeAssistantOverMQTTTests {
    /// An independent peer (paho-mqtt, Jinja2) does what Home Assistant would: it reads every
    /// discovery config, renders each value template on the payloads its state topic really
    /// receives, and presses the remote-stop button once the rig is seen running. The rig latches
    /// with the cause `remote-stop`; the entities' last values are robotd's own final figures.
    @Test func when_home_assistant_watches_a_run_expect_every_entity_fed_and_rendered_and_the_button_to_latch_the_rig() throws {
        try #require(FileManager.default.isExecutableFile(atPath: venvPython), "no \(venvPython): run scripts/setup-venv.sh")
        let directory = try temporaryDirectory("robotd-ha")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let rig = try RigOnBroker()
        defer { rig.stop() }
        let broker = rig.broker

        let configuration = try rigWithDiscovery(in: directory, port: broker.port)
        let expected = try #require(HomeAssistantEntities.discovery(for: configuration))
        let peer = try Subprocess(venvPython, [
            haPeer, "--broker", "127.0.0.1:\(broker.port)", "--node", HomeAssistantDiscovery.nodeID(robotID: configuration.robot.id),
            "--seconds", "60", "--press", "--press-after", "1.5", "--expect-both-states",
            // The example's temperature in °C; a p99 in µs (Home Assistant's spelling); a miss count has no unit.
            "--expect-unit", "sensor_temperature=°C", "--expect-unit", "thermostat_response_p99=\u{03BC}s", "--expect-unit", "thermostat_misses=",
        ])
        #expect(peer.waitFor("ready"), "the peer did not subscribe: \(peer.stderr)")

        // Two overruns (fewer than critical_misses: no stop of its own): the miss counts are not 0.
        var options = RobotDaemon.Options()
        let overrun = PolicyOverrunHook(count: 2, lateness: .milliseconds(3), after: .seconds(1))
        options.runtime.policyOverrun = overrun
        let daemon = try RobotDaemon(configuration: configuration, options: options) { _ in }
        try daemon.start()
        let monitor = try #require(daemon.telemetry)
        #expect(waitUntil(seconds: 25) { daemon.runtime.status.latched }, "the button never latched the rig: \(peer.stdout)")
        #expect(daemon.runtime.status.latchCause == .remoteStop)
        #expect(daemon.runtime.status.remoteStops == 1)
        #expect(overrun.overruns == 2)
        // A few windows more, so that the latched state and the figures after it come round.
        let cycles = monitor.counters.cycles.load(ordering: .relaxed)
        #expect(waitUntil(seconds: 10) { monitor.counters.cycles.load(ordering: .relaxed) >= cycles + 5 })
        daemon.stop(reason: "test")
        #expect(monitor.counters.discoveryPublished.load(ordering: .relaxed) == UInt64(expected.messages.count))

        #expect(peer.wait(seconds: 20) == 0, "peer: \(peer.stdout.suffix(4000)) \(peer.stderr.suffix(2000))")
        let summary = try #require(peer.jsonLines.last, "no summary from the peer: \(peer.stdout) \(peer.stderr)")
        #expect((summary["error_count"] as? Int) == 0)
        let entities = try #require(summary["entities"] as? [[String: Any]])
        for entity in entities where !((entity["errors"] as? [String]) ?? []).isEmpty {
            Issue.record("\(entity["topic"] ?? "?"): \(entity["errors"] ?? "-")")
        }
        #expect(entities.compactMap { $0["topic"] as? String } == expected.messages.map(\.topic).sorted())
        let button = try #require(summary["button"] as? [String: Any])
        #expect(button["latched"] as? Bool == true)
        #expect(button["command_topic"] as? String == "robotd/iot-rig-sim/estop")
        print("ha peer: \(entities.count) entities, button press → latched state in \(button["press_to_latched_ms"] ?? "-") ms")

        // The entities' last values are robotd's final figures: the scheduler's misses, the
        // status's temperature (both frozen since the scheduler stopped).
        func last(_ objectID: String) -> Double? {
            entities.first { ($0["object_id"] as? String) == objectID }?["last_number"] as? Double
        }
        for task in daemon.scheduler.snapshot().tasks where task.critical {
            #expect(last(task.name + "_misses") == Double(task.misses), "\(task.name)")
            let p99 = try #require(last(task.name + "_response_p99"), "\(task.name)")
            #expect(p99 > 0 && p99 < 100_000, "\(task.name): \(p99) µs")
        }
        #expect(last("thermostat_misses") ?? 0 >= 2)
        let temperature = daemon.runtime.status.sensors[0]
        #expect(temperature.isFinite)
        #expect(abs((last("sensor_temperature") ?? .nan) - temperature) < 1e-9, "rendered \(last("sensor_temperature") ?? .nan), robotd \(temperature)")
        let stopped = try #require(entities.first { ($0["object_id"] as? String) == "stopped" })
        #expect((stopped["config"] as? [String: Any])?["device_class"] as? String == "problem")
        #expect((stopped["attributes"] as? [String: Any])?["latch_cause"] as? String == "remote-stop")
    }

    /// `robotd run` publishes the configs; `robotd run --ha-remove` clears them, and an earlier
    /// configuration's config of the same robot, and leaves another device's alone.
    @Test func when_ha_remove_runs_expect_no_discovery_config_of_the_robot_left_retained() throws {
        try #require(FileManager.default.isExecutableFile(atPath: venvPython), "no \(venvPython): run scripts/setup-venv.sh")
        let directory = try temporaryDirectory("robotd-ha-remove")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let broker = try MosquittoBroker()
        try broker.start()
        defer { broker.stop() }
        let configuration = try rigWithDiscovery(in: directory, port: broker.port)
        let expected = try #require(HomeAssistantEntities.discovery(for: configuration)).messages.map(\.topic).sorted()
        let path = directory + "/iot-rig-sim.yaml"

        // No simulator: the rig holds (no reading yet); discovery goes out all the same.
        let run = try Subprocess(builtProduct("robotd"), ["run", "--config", path, "--seconds", "2"])
        #expect(run.wait(seconds: 30) == 0, "robotd run: \(run.stderr.suffix(2000))")
        #expect(try retainedConfigs(port: broker.port) == expected)

        let stale = "homeassistant/sensor/robotd_iot-rig-sim/renamed_task_misses/config"
        let foreign = "homeassistant/sensor/other_device/temperature/config"
        let publisher = try MQTTClient(options: MQTTOptions(port: broker.port, clientID: "ha-test-publisher-\(getpid())")) { _ in }
        try publisher.start()
        #expect(waitUntil { publisher.isConnected })
        for topic in [stale, foreign] { try publisher.publish(topic: topic, payload: Array(#"{"name":"x"}"#.utf8), qos: 1, retain: true) }
        #expect(waitUntil { publisher.queuedMessages == 0 })
        publisher.stop()
        #expect(try retainedConfigs(port: broker.port) == (expected + [stale, foreign]).sorted())

        let remove = try Subprocess(builtProduct("robotd"), ["run", "--config", path, "--ha-remove"])
        #expect(remove.wait(seconds: 30) == 0, "robotd run --ha-remove: \(remove.stderr)")
        let line = try #require(remove.jsonLines.last, "no JSON line: \(remove.stdout) \(remove.stderr)")
        #expect(line["kind"] as? String == "ha-remove")
        #expect(line["topics"] as? [String] == (expected + [stale]).sorted())
        #expect(line["found_retained"] as? [String] == (expected + [stale]).sorted())
        #expect(try retainedConfigs(port: broker.port) == [foreign])
    }

    /// A running robotd clears the discovery configs an older configuration of the same robot
    /// left retained (a sensor removed, an entity renamed), keeps its current ones (one planted
    /// with an old payload is overwritten, not removed), and never touches another node's — not
    /// even one whose robot id starts with its own, nor one of a robot with the same id under
    /// another prefix (its availability is another status topic).
    @Test func when_robotd_connects_expect_its_stale_discovery_configs_cleared_and_every_other_kept() throws {
        try #require(FileManager.default.isExecutableFile(atPath: venvPython), "no \(venvPython): run scripts/setup-venv.sh")
        let directory = try temporaryDirectory("robotd-ha-stale")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let broker = try MosquittoBroker()
        try broker.start()
        defer { broker.stop() }
        let configuration = try rigWithDiscovery(in: directory, port: broker.port)
        let expected = try #require(HomeAssistantEntities.discovery(for: configuration)).messages.map(\.topic).sorted()
        let node = "homeassistant/sensor/robotd_iot-rig-sim/"
        let stale = [node + "sensor_humidity/config", "homeassistant/binary_sensor/robotd_iot-rig-sim/door_open/config"]
        let foreign = ["homeassistant/sensor/robotd_iot-rig-sim-2/sensor_humidity/config", "homeassistant/sensor/other_device/temperature/config"]
        // Same node (same robot id), another robot: its status topic is under another prefix.
        let twin = node + "sensor_pressure/config"
        let status = "robotd/iot-rig-sim/status"
        let current = node + "sensor_temperature/config"
        #expect(expected.contains(current))

        let publisher = try MQTTClient(options: MQTTOptions(port: broker.port, clientID: "ha-stale-publisher-\(getpid())")) { _ in }
        try publisher.start()
        #expect(waitUntil { publisher.isConnected })
        for topic in stale + foreign + [current] {
            let payload = topic == stale[1] ? #"{"name":"old","avty":[{"t":"\#(status)"}]}"# : #"{"name":"old","availability_topic":"\#(status)"}"#
            try publisher.publish(topic: topic, payload: Array(payload.utf8), qos: 1, retain: true)
        }
        try publisher.publish(topic: twin, payload: Array(#"{"name":"twin","availability_topic":"plant/7/status"}"#.utf8), qos: 1, retain: true)
        #expect(waitUntil { publisher.queuedMessages == 0 })
        publisher.stop()
        #expect(try retainedConfigs(port: broker.port) == (stale + foreign + [current, twin]).sorted())

        // No simulator: the rig holds (no reading yet); telemetry and discovery go out all the same.
        let daemon = try RobotDaemon(configuration: configuration, options: RobotDaemon.Options()) { _ in }
        try daemon.start()
        let monitor = try #require(daemon.telemetry)
        #expect(waitUntil(seconds: 15) { monitor.counters.discoveryRemoved.load(ordering: .relaxed) >= UInt64(stale.count) },
                "removed \(monitor.counters.discoveryRemoved.load(ordering: .relaxed))")
        #expect(waitUntil(seconds: 10) { monitor.client.queuedMessages == 0 })
        // While it runs: its own configs, the foreign ones and the twin's, nothing stale.
        #expect(try retainedConfigs(port: broker.port) == (expected + foreign + [twin]).sorted())
        daemon.stop(reason: "test")
        #expect(monitor.counters.discoveryRemoved.load(ordering: .relaxed) == UInt64(stale.count))
        #expect(try retainedConfigs(port: broker.port) == (expected + foreign + [twin]).sorted())
    }
}

import Actuators
import Foundation
import Glibc
import RTScheduler
import RobotConfig
import RobotSim
import SafetyGuard
import Testing
import TestSupport
import Transports
import Yams
@testable import AIOSRobot

extension Examples {
    /// An example configuration copied to `directory` with `edit` applied (device paths, the
    /// broker's port), read back from that file as `robotd run --config` would read it.
    static func temporaryCopy(_ name: String, in directory: String, edit: (inout String) -> Void) throws -> RobotConfiguration {
        var yaml = try text(name)
        edit(&yaml)
        let path = directory + "/" + name
        try yaml.write(toFile: path, atomically: true, encoding: .utf8)
        return try YAMLDecoder().decode(RobotConfiguration.self, from: try String(contentsOfFile: path, encoding: .utf8))
    }

    /// examples/rover-sim.yaml with its rover port and gamepad FIFO in `directory`.
    static func roverSim(in directory: String) throws -> RobotConfiguration {
        let configuration = try temporaryCopy("rover-sim.yaml", in: directory) {
            $0 = $0.replacingOccurrences(of: "/tmp/robotd-sim/", with: directory + "/")
        }
        let paths = configuration.inputs.compactMap { input -> String? in
            if case .string(let path)? = input.settings["path"] { path } else { nil }
        }
        guard paths == [directory + "/rover", directory + "/gamepad"] else {
            throw KindError("the example's device paths were not replaced: \(paths)")
        }
        return configuration
    }
}

/// The generic daemon on real threads against the real-time simulator, through a stable port path,
/// as it would run against a USB motor driver that gets unplugged and plugged back in.
@Suite("RobotDaemon: lost and regained rover link", .serialized)
struct RobotDaemonTests {
    /// `aliased`: the motor back end names the port by another link than the input does (as a
    /// by-id path beside /dev/ttyUSB0 would): it is the same device and is reopened all the same.
    @Test(arguments: [false, true])
    func when_the_rover_link_drops_and_returns_expect_a_latched_stop_reactivation_in_safe_state_and_motion_only_after_reset(aliased: Bool) throws {
        let directory = try temporaryDirectory("robotd-daemon")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var simOptions = SimulatorRunner.Options()
        simOptions.roverLinkPath = directory + "/rover"
        simOptions.gamepadFIFO = directory + "/gamepad"
        var first: SimulatorRunner? = try SimulatorRunner(options: simOptions)
        try first?.start()

        // The real-time setup the example asks for (SCHED_FIFO as root), as `robotd run` has it: on
        // ordinary threads a loaded machine can keep the first frame past the link's 150 ms.
        var configuration = try Examples.roverSim(in: directory)
        if aliased {
            try FileManager.default.createSymbolicLink(atPath: directory + "/motor-port", withDestinationPath: directory + "/rover")
            for i in configuration.actuators.indices where configuration.actuators[i].kind == "serial_frames" {
                guard case .map(var entries) = configuration.actuators[i].settings else { continue }
                for j in entries.indices where entries[j].key == "path" { entries[j].value = .string(directory + "/motor-port") }
                configuration.actuators[i].settings = .map(entries)
            }
            #expect(configuration.actuators.contains { $0.settings["path"] == .string(directory + "/motor-port") })
        }
        let daemon = try RobotDaemon(configuration: configuration) { _ in }
        try daemon.start()
        defer { daemon.stop(reason: "test") }
        #expect(waitUntil { (first?.rover.snapshot().odometer ?? 0) > 0.2 })
        #expect(!daemon.runtime.isLatched, "latched: \(daemon.runtime.status.latchCause.map { "\($0)" } ?? "-")")

        // Unplugged: the simulator goes away with its pty.
        first?.stop()
        first = nil
        #expect(waitUntil { daemon.runtime.isLatched })
        // The pty's EOF (and the gamepad FIFO's writer going too: the e-stop device is lost).
        var records: [AuditRecord] = []
        #expect(waitUntil {
            records += daemon.runtime.audit.drain()
            return records.contains { $0.fault == .connectionLost } && records.contains { $0.fault == .estopDeviceLost }
        })

        // Plugged back in; the operator resets 2 s later (the new simulator's gamepad).
        simOptions.gamepadScript = [.init(at: 2_000_000_000, [.press("BTN_START")]), .init(at: 2_100_000_000, [.release("BTN_START")])]
        let second = try SimulatorRunner(options: simOptions)
        try second.start()
        defer { second.stop() }
        // The motor side reopened and reactivated in its safe state: the firmware is told to de-energise.
        #expect(waitUntil { daemon.actuators.state(of: "rover_motors") == .active && second.rover.snapshot().firmware.deenergiseCommands >= 2 })
        #expect(waitUntil { daemon.runtime.status.reactivations >= 1 })
        #expect(waitUntil { daemon.runtime.status.resets == 1 })
        #expect(waitUntil { second.rover.snapshot().odometer > 0.1 })
        // Nothing moved before the reset (in the simulator's own time, whenever the test looked).
        #expect((second.rover.snapshot().firmware.firstEnergisedAt ?? 0) >= 2_000_000_000)
    }

    @Test func when_an_input_fails_to_open_after_the_dispatch_thread_started_expect_the_start_to_end_in_the_safe_state() throws {
        let directory = try temporaryDirectory("robotd-daemon-failed-start")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var simOptions = SimulatorRunner.Options()
        simOptions.roverLinkPath = directory + "/rover"
        simOptions.gamepadFIFO = directory + "/gamepad"
        let sim = try SimulatorRunner(options: simOptions)
        try sim.start()
        defer { sim.stop() }
        // A character device that is no input device: it passes the e-stop device check at init,
        // and libevdev refuses it at start, after the serial reader and the dispatch thread.
        var configuration = try Examples.roverSim(in: directory)
        for i in configuration.inputs.indices where configuration.inputs[i].kind == "evdev" {
            guard case .map(var entries) = configuration.inputs[i].settings else { continue }
            for j in entries.indices where entries[j].key == "path" { entries[j].value = .string("/dev/null") }
            configuration.inputs[i].settings = .map(entries)
        }
        #expect(configuration.inputs.contains { $0.settings["path"] == .string("/dev/null") })
        let daemon = try RobotDaemon(configuration: configuration) { _ in }
        #expect(throws: (any Error).self) { try daemon.start() }
        // Stopped: the guard task is released no more, and the motors were told to de-energise.
        let guardReleases = { daemon.scheduler.snapshot().task(named: "guard")?.releases ?? 0 }
        let before = guardReleases()
        usleep(300_000)
        #expect(guardReleases() == before)
        #expect(sim.rover.snapshot().firmware.deenergiseCommands >= 1)
        #expect(daemon.actuators.state(of: "rover_motors") != .active)
    }
}

/// The IoT rig's configuration (examples/iot-rig-sim.yaml) under the generic daemon in real time,
/// against the simulated rig on a real Mosquitto broker: readings through libmosquitto into the
/// `mqtt` input, commands out through the `mqtt` back end, the remote reset from an operator's
/// console.
@Suite("IoT rig over a real broker", .serialized, .enabled(if: MosquittoBroker.isInstalled, "mosquitto is not installed"))
struct RigOverMQTTTests {
    static func rigSim(in directory: String, port: Int, setpoint: Double) throws -> RobotConfiguration {
        let configuration = try Examples.temporaryCopy("iot-rig-sim.yaml", in: directory) {
            $0 = $0.replacingOccurrences(of: "broker: 127.0.0.1:18830", with: "broker: 127.0.0.1:\(port)")
                .replacingOccurrences(of: "client_id: robotd-iot-rig-sim", with: "client_id: robotd-rig-test-\(getpid())")
                .replacingOccurrences(of: "setpoint: 35.0", with: "setpoint: \(setpoint)")
        }
        guard configuration.mqtt?.broker == "127.0.0.1:\(port)", configuration.policies.first?.settings["setpoint"] == .number(setpoint),
              !configuration.safety.startLatched else {
            throw KindError("the example's broker or setpoint was not replaced, or it starts latched")
        }
        return configuration
    }

    /// The operator's reset request topic (`…/estop/reset/operator`).
    static func resetTopic(_ configuration: RobotConfiguration) throws -> String {
        guard let topics = configuration.inboundTopics else { throw KindError("the example has no remote stop") }
        return topics.resetTopic(user: "operator")
    }

    /// What an operator's console does: connect, publish one message, disconnect.
    static func publish(_ text: String, to topic: String, port: Int) throws {
        let console = try MQTTClient(options: MQTTOptions(port: port, clientID: "robotd-rig-test-console-\(getpid())")) { _ in }
        try console.start()
        defer { console.stop() }
        #expect(waitUntil { console.isConnected })
        try console.publish(topic: topic, payload: Array(text.utf8), qos: 1, retain: false)
    }

    @Test func when_the_rig_is_below_the_setpoint_expect_the_heater_switched_on_over_mqtt_and_off_on_safe_stop() throws {
        let directory = try temporaryDirectory("robotd-rig")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let rig = try RigOnBroker()
        defer { rig.stop() }
        let broker = rig.broker, sim = rig.sim

        var options = RobotDaemon.Options()
        options.realtime = RealtimeOptions()
        // The rig starts at 20 °C.
        let configuration = try Self.rigSim(in: directory, port: broker.port, setpoint: 23)
        let daemon = try RobotDaemon(configuration: configuration, options: options) { _ in }
        try daemon.start()
        defer { daemon.stop(reason: "test") }
        let client = try #require(daemon.mqtt)
        // The temperature, the remote stop and its reset; the rig's heater and fan.
        #expect(waitUntil { client.counters.subscribed.load(ordering: .relaxed) >= 3 && sim.rigSubscriptions >= 2 })
        // The daemon connects before the control path starts: not latched (`start_latched: false`).
        #expect(!daemon.runtime.isLatched, "latched at start: \(daemon.runtime.status.latchCause.map { "\($0)" } ?? "-")")
        #expect(waitUntil(seconds: 15) { sim.rig?.snapshot().heaterOn == true })
        #expect(daemon.runtime.status.sensors[0] < 23)  // a fresh reading, below the setpoint
        #expect(!daemon.runtime.isLatched && daemon.runtime.status.approved[0] == 1)
        daemon.actuators.safeStop(reason: "test")
        #expect(waitUntil(seconds: 10) { sim.rig?.snapshot().heaterOn == false })
        #expect(sim.rig?.snapshot().counters.commandsIgnored == 0)
    }

    @Test func when_the_broker_is_killed_while_heating_expect_a_latched_lost_link_the_relay_off_by_its_own_timeout_and_heat_after_a_reset() throws {
        let directory = try temporaryDirectory("robotd-rig")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let broker = try MosquittoBroker()
        try broker.start()
        var simOptions = SimulatorRunner.Options()
        simOptions.broker = ("127.0.0.1", broker.port)
        simOptions.rig.sampleHz = 5
        simOptions.rig.relayTimeout = 3_000_000_000
        simOptions.rigReconnectMaxSeconds = 1
        let sim = try SimulatorRunner(options: simOptions)
        try sim.start()
        defer { sim.stop() }

        var options = RobotDaemon.Options()
        options.realtime = RealtimeOptions()
        let configuration = try Self.rigSim(in: directory, port: broker.port, setpoint: 30)
        let daemon = try RobotDaemon(configuration: configuration, options: options) { _ in }
        try daemon.start()
        defer { daemon.stop(reason: "test") }
        let client = try #require(daemon.mqtt)
        #expect(waitUntil { client.counters.subscribed.load(ordering: .relaxed) >= 3 && sim.rigSubscriptions >= 2 })
        #expect(waitUntil(seconds: 15) { sim.rig?.snapshot().heaterOn == true })
        #expect(!daemon.runtime.isLatched, "latched: \(daemon.runtime.status.latchCause.map { "\($0)" } ?? "-")")

        // The broker dies (SIGKILL by its PID): nothing robotd sends reaches the relay any more.
        let pid = try #require(broker.pid)
        kill(pid, SIGKILL)
        broker.stop()
        #expect(waitUntil(seconds: 5) { daemon.runtime.status.latched && daemon.runtime.status.causes.contains(.connectionLost) })
        // The lost link, or the back end whose publish failed with it (category 0, which escalates).
        #expect([.connectionLost, .actuatorFailure].contains(daemon.runtime.status.latchCause))
        #expect(waitUntil(seconds: 8) { sim.rig?.snapshot().heaterOn == false })
        #expect((sim.rig?.snapshot().counters.relayTimeouts ?? 0) >= 1)

        // The broker is back on the same port: both clients reconnect, the back end is reactivated
        // in its safe state, the causes clear, and a reset from the operator's console lets the
        // heater come on again.
        let again = try MosquittoBroker(port: broker.port)
        try again.start()
        defer { again.stop() }
        #expect(waitUntil(seconds: 15) { client.isConnected && sim.isRigConnected && daemon.runtime.status.causes.isEmpty })
        #expect(daemon.runtime.status.latched && daemon.actuators.state(of: "rig_relays") == .active)
        try Self.publish("reset \(daemon.runtime.status.latchSequence)", to: try Self.resetTopic(configuration), port: broker.port)
        #expect(waitUntil(seconds: 5) { !daemon.runtime.status.latched })
        #expect(daemon.runtime.status.resets == 1)
        // After its minimum off time (10 s) from the stop.
        #expect(waitUntil(seconds: 20) { sim.rig?.snapshot().heaterOn == true })
    }
}

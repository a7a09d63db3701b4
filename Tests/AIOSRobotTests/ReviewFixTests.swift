import Foundation
import RTScheduler
import RobotConfig
import RobotSim
import SafetyGuard
import Testing
import Transports
@testable import AIOSRobot

/// What a hostile review of the generic runtime found failing open, each as the test that failed
/// before its fix.
@Suite("Generic runtime: the review's fail-open findings stay closed")
struct ReviewFixTests {
    /// A teleop gamepad unplugged with the deadman held and the stick forward: the deadman counts
    /// as released at once, and the lost device is a stop — `connection-lost` for a gamepad that is
    /// only for teleop, `estop-device-lost` for one that is also the e-stop.
    @Test(arguments: [false, true])
    func when_a_held_teleop_gamepad_is_unplugged_expect_no_more_motion_and_a_latched_stop(isEStop: Bool) throws {
        let loop = try ConfiguredRoverLoop(try Examples.configuration("rover-sim.yaml") {
            $0 = policies($0, ConfiguredRoverTests.teleopOnly)
            if !isEStop {
                // The e-stop elsewhere (say, a hard-wired one): this gamepad is for teleop only.
                if let start = $0.range(of: "\nestop:\n"), let end = $0.range(of: "\npolicies:\n") {
                    $0.replaceSubrange(start.lowerBound..<end.lowerBound, with: "\nestop: none\n")
                }
            }
        })
        try loop.script([.init(at: 1_000_000_000, [.press("BTN_TL")]), .init(at: 1_100_000_000, [.axis("ABS_Y", -32767)])])
        loop.run(until: 3_000_000_000)
        #expect(loop.snapshot.linearVelocity > 0.4)
        #expect(isEStop || !loop.runtime.configuration.inputs.isEmpty && loop.runtime.estops.isEmpty)  // the edit took
        _ = loop.runtime.handle(.ended("ENODEV"), arrival: 3_000_000_000, input: "gamepad")
        loop.padAlive.store(false, ordering: .relaxed)
        loop.run(until: 5_000_000_000)
        #expect(abs(loop.snapshot.linearVelocity) < 0.01 && abs(loop.snapshot.angularVelocity) < 0.01)
        #expect(loop.status.latched && loop.status.causes.contains(isEStop ? .estopDeviceLost : .connectionLost), "causes \(loop.status.causes)")
    }

    /// IMU frames fed to the range sensor as well: they prove the IMU alive, they must never keep
    /// a dead range sensor's last value fresh.
    @Test func when_alive_only_frames_feed_a_value_sensor_expect_its_death_still_seen() throws {
        var sim = RoverSimulationConfig()
        sim.faults = [SimulatorFault(.rangeDead, at: 3_000_000_000)]
        let loop = try ConfiguredRoverLoop(try Examples.configuration("rover-sim.yaml") {
            $0 = $0.replacingOccurrences(of: "      imu: imu\n", with: "      imu: range\n")
        }, simulation: sim)
        loop.run(until: 5_000_000_000)
        #expect(loop.status.latched && loop.status.latchCause == .staleSensor, "\(String(describing: loop.status.latchCause))")
        #expect(abs(loop.snapshot.linearVelocity) < 0.01)
    }

    /// With a workspace, the encoders feed the pose it is checked on: a reaction weaker than stop
    /// is refused before anything runs.
    @Test func when_the_workspace_encoders_only_warn_expect_the_file_refused() throws {
        let text = try Examples.text("rover-sim.yaml").replacingOccurrences(of: """
          - name: wheel_encoders
            max_age_ms: 200
            reaction: stop                     # odometry feeds the workspace
            stop_category: 1
        """, with: """
          - name: wheel_encoders
            max_age_ms: 200
            reaction: warn
        """)
        #expect(text.contains("reaction: warn"))
        let report = RobotFileCheck.load(text: text, file: "rover.yaml")
        #expect(report.configuration == nil)
        #expect(report.errors.contains { $0.message.contains("reaction must be stop") }, "\(report)")
    }

    /// A filter applies to winners with exactly its channel list: a policy that shares its
    /// channels in another order would pass unfiltered (an obstacle stop that does not stop), so
    /// the file is refused.
    @Test func when_a_policy_shares_a_filters_channels_in_another_order_expect_the_file_refused() throws {
        let original = try Examples.text("rover-sim.yaml")
        let text = original.replacingOccurrences(of: "    critical: true\n    channels: [wheel_left, wheel_right]\n    priority: 100",
                                                 with: "    critical: true\n    channels: [wheel_right, wheel_left]\n    priority: 100")
        #expect(text != original)
        let report = RobotFileCheck.load(text: text, file: "rover.yaml")
        #expect(report.configuration == nil)
        // Today's wheel kinds refuse another order themselves; the runtime's rule (a policy sharing
        // a filter's channels must list exactly them) backs any kind that would not.
        #expect(report.errors.contains { $0.message.contains("would not be filtered") || $0.message.contains("left first") }, "\(report)")
    }

    /// Any message on the remote stop topic stops, whatever it says; a reset must say so.
    @Test func when_a_remote_stop_says_anything_expect_a_latch() throws {
        let loop = try ConfiguredRigLoop(try Examples.configuration("iot-rig-sim.yaml"))
        loop.run(until: 20_000_000_000)
        loop.publish("robotd/iot-rig-sim/estop", "STOP!")
        loop.run(until: 21_000_000_000)
        #expect(loop.status.latched && loop.status.latchCause == .remoteStop)
        loop.publish("robotd/iot-rig-sim/estop/reset/operator", "please")
        loop.run(until: 22_000_000_000)
        #expect(loop.status.latched && loop.runtime.remoteStopCounters.unrecognised.load(ordering: .relaxed) == 1)
    }

    /// A retained temperature (the broker's memory of a dead probe) is not a fresh reading.
    @Test func when_the_only_reading_is_retained_expect_the_heater_held_off() throws {
        let loop = try ConfiguredRigLoop(try Examples.configuration("iot-rig-sim.yaml"))
        loop.readingsFlow.store(false, ordering: .relaxed)
        for t in stride(from: Int64(1), through: 30, by: 1) {
            loop.publish("sim/rig/temperature", "{\"value\": 25}", retained: true)
            loop.run(until: t * 1_000_000_000)
        }
        #expect(!loop.rig.snapshot().heaterOn)
        #expect(loop.status.sensors[0].isNaN)
    }

    /// F8: a gamepad's axes and keys must each have a slot of their own in the reader's levels, and
    /// the runtime must pair each registered gamepad with its reader one for one. A file that
    /// would break that — an e-stop key's code given to the reset too, an axis name twice — is
    /// refused by `check`'s dry build at the input, in words; nothing traps or misroutes on input.
    @Test(arguments: [
        ("      - {code: BTN_START, action: reset}", "      - {code: BTN_EAST, action: reset}", "code BTN_EAST is already keys[0]'s (estop)"),
        ("      - {code: ABS_RX, name: angular, deadzone: 0.05, invert: true}", "      - {code: ABS_RX, name: linear, deadzone: 0.05, invert: true}",
         "name linear is already axes[0]'s"),
        ("      - {code: BTN_NORTH, action: handback}", "      - {code: BTN_NORTH, action: handback}\n      - {code: BTN_SELECT, action: reset}",
         "keys[4]: action reset is already keys[1]'s"),
    ])
    func when_a_gamepad_mapping_has_no_slot_per_axis_and_key_expect_the_file_refused_at_the_input(edit: (String, String, String)) throws {
        var text = try Examples.text("rover-sim.yaml")
        #expect(text.contains(edit.0))
        text = text.replacingOccurrences(of: edit.0, with: edit.1)
        let report = RobotFileCheck.load(text: text, file: "rover.yaml")
        #expect(report.configuration == nil)
        #expect(report.errors.contains { $0.keyPath.hasPrefix("inputs[1]") && $0.message.contains("input gamepad: ") && $0.message.contains(edit.2) },
                "\(report)")
    }

    /// F8: the pairing itself. A registered gamepad its endpoint does not carry, or one whose
    /// reader has other axes than registered, is refused with the input's name.
    @Test func when_registered_gamepads_and_their_readers_do_not_pair_expect_a_clear_refusal() throws {
        let loop = try ConfiguredRoverLoop(try Examples.configuration("rover-sim.yaml"))
        let pad = try loop.gamepadInput()
        let endpoint = InputEndpoint.inputDevice(.init(path: "/dev/null", grab: false, gamepad: pad, isEStop: false))
        #expect(try RobotRuntime.alignGamepads([("gamepad", ["linear", "angular"])], endpoints: [("gamepad", endpoint)]).count == 1)
        #expect(throws: KindError("input gamepad: its gamepad has the axes [linear, angular], not the [angular, linear] it registered")) {
            try RobotRuntime.alignGamepads([("gamepad", ["angular", "linear"])], endpoints: [("gamepad", endpoint)])
        }
        #expect(throws: KindError("input second: registered a gamepad that its endpoint does not carry")) {
            try RobotRuntime.alignGamepads([("gamepad", ["linear", "angular"]), ("second", ["x"])], endpoints: [("gamepad", endpoint)])
        }
    }
}

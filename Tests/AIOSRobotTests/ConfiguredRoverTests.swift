import Foundation
import RTScheduler
import RobotConfig
import RobotSim
import SafetyGuard
import Testing
@testable import AIOSRobot

/// The generic runtime on the example rover configuration (examples/rover-sim.yaml) and variants
/// of it, judged on the simulator's ground truth, in lockstep on virtual time.
@Suite("Configured rover: examples/rover-sim.yaml in lockstep with the simulated rover")
struct ConfiguredRoverTests {
    @Test(arguments: [UInt64(1), 2, 3, 4, 5, 6, 7, 8])
    func when_the_example_rover_wanders_expect_travel_without_collisions_or_missed_deadlines(seed: UInt64) throws {
        // Different noise and a different start heading per case: eight different paths.
        var sim = RoverSimulationConfig()
        sim.seed = seed
        sim.start.yaw = Double(seed) * 0.7
        let loop = try ConfiguredRoverLoop(try Examples.configuration("rover-sim.yaml") {
            $0 = $0.replacingOccurrences(of: "initial_pose: {x: -3.5, y: 0, yaw: 0}", with: "initial_pose: {x: -3.5, y: 0, yaw: \(sim.start.yaw)}")
        }, simulation: sim)
        loop.run(until: 30_000_000_000)
        let truth = loop.snapshot
        #expect(truth.odometer > 5)
        #expect(truth.collisions == 0)
        #expect(loop.task("wander")?.misses == 0 && loop.task("teleop")?.misses == 0 && loop.task("guard")?.misses == 0)
        #expect(loop.task("wander")?.releases == 1501)
        #expect(!loop.status.latched)
        // Fail closed at start: until every required sensor has reported motion is held — the last
        // is the e-stop device, whose first keep-alive report comes at 200 ms —, so wander's first
        // commands (0, 20, …, 180 ms; two wheels each) are refused as `holding`, and none after.
        let rejections = loop.records.filter { $0.kind == .rejected }
        #expect(rejections.count == 20 && rejections.allSatisfy { $0.rejectReason == .holding && $0.at.nanoseconds < 200_000_000 })
        let verdicts = loop.status.verdicts
        #expect(verdicts.rejected == 20 && verdicts.stopped == 0 && verdicts.passed > 2500, "\(verdicts)")
        #expect(truth.firmware.framesRejected == 0 && truth.firmware.watchdogTrips == 0)
        // Range 20 Hz and encoders 50 Hz reached the control path.
        #expect((loop.task("rover_port/range")?.completions ?? 0) >= 599 && (loop.task("rover_port/wheel_encoders")?.completions ?? 0) >= 1499)
        // The wander policy (index 1) drives; teleop (index 0) has no deadman press, so no opinion.
        #expect(loop.status.commandedBy[0] == 1 && loop.status.commandedBy[1] == 1)
        // Odometry follows the ground truth (no slip here): within 5 cm after 30 s.
        #expect(hypot(loop.status.pose.x - truth.pose.x, loop.status.pose.y - truth.pose.y) < 0.05)
    }

    /// A square of waypoints, followed by pure pursuit: each corner passed within 0.2 m (ground
    /// truth), in order, without touching anything.
    @Test func when_following_a_square_of_waypoints_expect_each_passed_within_20_cm_in_order_without_collision() throws {
        let square = [(-2.5, -0.5), (-0.5, -0.5), (-0.5, 1.0), (-2.5, 1.0), (-2.5, -0.5)]
        let loop = try ConfiguredRoverLoop(try Examples.configuration("rover-sim.yaml") { $0 = policies($0, Self.waypoints(square)) })
        loop.run(until: 40_000_000_000)
        let approaches = square.map { loop.closestApproach(to: $0) }
        for (i, a) in approaches.enumerated() {
            #expect(a.distance < 0.2, "waypoint \(i) \(square[i]): closest \(a.distance) m")
        }
        // In order (the last corner is the first one again: compare the first four).
        #expect(zip(approaches.prefix(4), approaches.prefix(4).dropFirst()).allSatisfy { $0.at < $1.at })
        #expect(loop.snapshot.collisions == 0 && !loop.status.latched)
        #expect(loop.task("waypoints")?.misses == 0)
    }

    /// A waypoint behind a pillar: the waypoints policy keeps asking to go forward, the
    /// obstacle_stop filter removes forward motion near it, and the rover stops short of contact.
    @Test func when_an_obstacle_is_ahead_expect_obstacle_stop_to_halt_the_rover_before_contact() throws {
        // Straight at the pillar at (2.0, 0.5), r = 0.4, from (-3.5, 0.5) heading +x.
        var sim = RoverSimulationConfig()
        sim.start = Pose2D(x: -3.5, y: 0.5, yaw: 0)
        let loop = try ConfiguredRoverLoop(try Examples.configuration("rover-sim.yaml") {
            $0 = policies($0, Self.waypoints([(4.0, 0.5)], speed: 0.4))
            $0 = $0.replacingOccurrences(of: "initial_pose: {x: -3.5, y: 0, yaw: 0}", with: "initial_pose: {x: -3.5, y: 0.5, yaw: 0}")
        }, simulation: sim)
        loop.run(until: 25_000_000_000)
        let truth = loop.snapshot
        #expect(truth.collisions == 0)
        // Stopped in front of the pillar: its surface is at x = 1.6; the rover's body (0.18 m) short of it.
        #expect(truth.pose.x < 1.6 - 0.18 && truth.pose.x > 0.5, "x = \(truth.pose.x)")
        #expect(abs(truth.linearVelocity) < 0.01)
        #expect(loop.status.filtered > 0)
    }

    /// teleop alone: the sticks drive while the deadman is held; on its release the wheels stop.
    @Test func when_the_deadman_is_released_expect_teleop_to_stop_the_rover() throws {
        let loop = try ConfiguredRoverLoop(try Examples.configuration("rover-sim.yaml") { $0 = policies($0, Self.teleopOnly) })
        try loop.script([
            .init(at: 1_000_000_000, [.press("BTN_TL")]),  // enabled with the sticks centred
            .init(at: 1_100_000_000, [.axis("ABS_Y", -32767)]),  // inverted: full forward
            .init(at: 3_000_000_000, [.release("BTN_TL")]),
        ])
        loop.run(until: 2_900_000_000)
        let driving = loop.snapshot
        #expect(driving.linearVelocity > 0.4 && driving.linearVelocity < 0.55, "v = \(driving.linearVelocity)")
        loop.run(until: 4_000_000_000)
        let after = loop.snapshot
        #expect(abs(after.linearVelocity) < 0.01)
        #expect(after.odometer - driving.odometer < 0.3)  // braking distance only
        #expect(!loop.status.latched && loop.snapshot.collisions == 0)
    }

    /// twist_mux's idiom: teleop (priority 100) takes the wheels from waypoints (50) while its
    /// deadman is held, keeps them stopped after its release, and hands them back on the
    /// hand-back key (BTN_NORTH) pressed with the deadman released.
    @Test func when_teleop_takes_over_from_waypoints_expect_it_to_win_then_hand_back() throws {
        let square = [(-2.5, -0.5), (-0.5, -0.5), (-0.5, 1.0), (-2.5, 1.0)]
        let loop = try ConfiguredRoverLoop(try Examples.configuration("rover-sim.yaml") {
            $0 = policies($0, Self.teleop + Self.waypoints(square))
        })
        try loop.script([
            .init(at: 4_000_000_000, [.press("BTN_TL")]),
            .init(at: 4_050_000_000, [.axis("ABS_RX", -20000)]),  // turn on the spot
            .init(at: 6_000_000_000, [.release("BTN_TL"), .axis("ABS_RX", 0)]),
            .init(at: 8_000_000_000, [.press("BTN_NORTH")]),
            .init(at: 8_050_000_000, [.release("BTN_NORTH")]),  // the hand-back acts on the key's release
        ])
        loop.run(until: 3_900_000_000)
        #expect(loop.status.commandedBy[0] == 1)  // waypoints
        loop.run(until: 5_900_000_000)
        #expect(loop.status.commandedBy[0] == 0 && loop.status.commandedBy[1] == 0)  // teleop
        #expect(abs(loop.snapshot.linearVelocity) < 0.05 && abs(loop.snapshot.angularVelocity) > 0.3)
        loop.run(until: 7_900_000_000)
        // Released: teleop still has the wheels, at rest; waypoints does not resume by itself.
        #expect(loop.status.commandedBy[0] == 0 && abs(loop.snapshot.angularVelocity) < 0.01 && abs(loop.snapshot.linearVelocity) < 0.01)
        loop.run(until: 8_500_000_000)
        #expect(loop.status.commandedBy[0] == 1)  // handed back
        loop.run(until: 40_000_000_000)
        #expect(square.map { loop.closestApproach(to: $0).distance }.allSatisfy { $0 < 0.2 })
        #expect(loop.snapshot.collisions == 0 && !loop.status.latched)
    }

    @Test func when_the_gamepad_estop_is_pressed_then_reset_expect_a_latch_then_motion_only_from_fresh_commands() throws {
        let loop = try ConfiguredRoverLoop(try Examples.configuration("rover-sim.yaml"), gamepad: [
            .init(at: 3_000_000_000, [.press("BTN_EAST")]),
            .init(at: 3_100_000_000, [.release("BTN_EAST")]),
            .init(at: 5_950_000_000, [.press("BTN_START")]),
            .init(at: 6_000_000_000, [.release("BTN_START")]),  // a reset acts on the key's release
        ])
        loop.run(until: 2_990_000_000)
        let before = loop.snapshot
        #expect(before.linearVelocity > 0.1 || abs(before.angularVelocity) > 0.1)
        loop.run(until: 5_900_000_000)
        #expect(loop.status.latched && loop.status.latchCause == .emergencyStopInput)
        #expect(!loop.snapshot.leftEnergised && !loop.snapshot.rightEnergised && abs(loop.snapshot.linearVelocity) < 0.01)
        #expect(loop.snapshot.odometer - before.odometer < 0.5)  // coasting distance only
        #expect(loop.status.verdicts.stopped > 100)  // every policy command while latched gets a stop verdict
        #expect(loop.records.contains { $0.kind == .latched && $0.fault == .emergencyStopInput })
        loop.run(until: 6_100_000_000)
        #expect(!loop.status.latched && loop.status.resets == 1)
        // 100 ms after the reset at ≤ 40 rad/s² the wheels can be at ≤ 4 rad/s: ramping from rest,
        // on fresh commands (nothing from before the stop resumes).
        #expect(loop.snapshot.wheelSpeedLeft <= 4.0 + 1e-6 && loop.snapshot.leftEnergised)
        loop.run(until: 9_000_000_000)
        #expect(loop.snapshot.odometer > 0.5 && loop.snapshot.collisions == 0)
    }

    /// The rover's port goes quiet (unplugged: no frames): connection lost → a latched stop; frames
    /// again → the link is back, a reset is accepted only then, and the rover drives again.
    @Test func when_the_serial_link_goes_silent_expect_a_safe_stop_and_driving_again_only_after_a_reset() throws {
        let loop = try ConfiguredRoverLoop(try Examples.configuration("rover-sim.yaml"))
        loop.run(until: 3_000_000_000)
        loop.runtime.setLink("rover_port", up: false, at: Instant(nanoseconds: 3_000_000_000))
        loop.run(until: 4_000_000_000)
        #expect(loop.status.latched && loop.status.causes.contains(.connectionLost))
        #expect(!loop.snapshot.leftEnergised && abs(loop.snapshot.linearVelocity) < 0.01)
        try loop.script([.init(at: 4_500_000_000, [.press("BTN_START")]), .init(at: 4_550_000_000, [.release("BTN_START")])])
        loop.run(until: 5_000_000_000)
        #expect(loop.status.latched && loop.status.refusedResets == 1)  // refused: the link is still down
        loop.runtime.setLink("rover_port", up: true, at: Instant(nanoseconds: 5_000_000_000))
        try loop.script([.init(at: 5_500_000_000, [.press("BTN_START")]), .init(at: 5_550_000_000, [.release("BTN_START")])])
        loop.run(until: 9_000_000_000)
        #expect(!loop.status.latched && loop.status.resets == 1)
        #expect(loop.snapshot.leftEnergised && loop.snapshot.odometer > 1)
    }

    /// The workspace ladder on the odometry pose: a box that ends 2 m ahead of the rover. It warns,
    /// then holds (zero motion, commands refused) before the pose is more than `stop_margin` out.
    @Test func when_the_rover_reaches_the_workspace_edge_expect_warn_then_hold_and_it_stays_inside_the_stop_band() throws {
        var sim = RoverSimulationConfig()
        sim.seed = 3
        let loop = try ConfiguredRoverLoop(try Examples.configuration("rover-sim.yaml") {
            $0 = $0.replacingOccurrences(of: "polygon: [[-5, -4], [5, -4], [5, 4], [-5, 4]]\n  warn_margin: 0.3",
                                         with: "polygon: [[-4.5, -3], [-1.5, -3], [-1.5, 3], [-4.5, 3]]\n  warn_margin: 0.5")
        }, simulation: sim)
        #expect(loop.runtime.configuration.workspace?.polygon?.first == [-4.5, -3])  // the edit took
        for second in 1...15 {  // drained every second, as telemetry would: the audit ring holds 1024 records
            loop.run(until: Int64(second) * 1_000_000_000)
            _ = loop.records
        }
        let truth = loop.snapshot
        #expect(loop.status.holding)
        #expect(truth.pose.x > -1.6 && truth.pose.x < -1.5 + 0.3, "x = \(truth.pose.x)")  // held just past the edge, inside the stop band
        #expect(abs(truth.linearVelocity) < 0.01)
        let records = loop.records
        let warned = try #require(records.first { $0.fault == .workspace && $0.kind == .warn }?.at)
        let held = try #require(records.first { $0.fault == .workspace && $0.kind == .hold }?.at)
        #expect(warned < held)  // warn, then hold
        #expect(!loop.status.latched)  // a hold, not a stop
        #expect(truth.collisions == 0)
    }

    /// Invariant 3: a critical loop that keeps missing is a fault that stops the robot. A
    /// higher-priority task that eats the CPU from 4 s on starves the critical policies.
    @Test func when_the_critical_policy_keeps_missing_its_deadline_expect_a_deadline_fault_and_a_latched_stop() throws {
        var sim = RoverSimulationConfig()
        sim.seed = 2
        let loop = try ConfiguredRoverLoop(try Examples.configuration("rover-sim.yaml"), simulation: sim)
        let clock = loop.clock
        loop.scheduler.addPeriodic("hog", PeriodicSpec(period: .milliseconds(50), phase: .seconds(4), priority: .critical)) { _ in
            clock.advance(by: .milliseconds(49))
        }
        loop.run(until: 3_900_000_000)
        #expect(loop.status.deadlineFaults == 0 && !loop.status.latched)
        #expect(loop.task("wander")?.misses == 0)
        #expect(loop.snapshot.odometer > 0.5)  // it was driving
        loop.run(until: 6_000_000_000)
        #expect(loop.status.deadlineFaults >= 1 && loop.status.latched)
        #expect(loop.status.latchCause == .deadlineFault)
        #expect(loop.records.contains { $0.fault == .deadlineFault })
        #expect((loop.task("wander")?.misses ?? 0) >= 5)
        #expect(!loop.snapshot.leftEnergised && !loop.snapshot.rightEnergised)
    }

    @Test func when_the_same_run_is_repeated_expect_a_bit_identical_trajectory() throws {
        let script: [SimulatedGamepad.Step] = [.init(at: 7_000_000_000, [.press("BTN_EAST")])]
        let a = try ConfiguredRoverLoop(try Examples.configuration("rover-sim.yaml"), gamepad: script)
        let b = try ConfiguredRoverLoop(try Examples.configuration("rover-sim.yaml"), gamepad: script)
        a.run(until: 10_000_000_000)
        b.run(until: 10_000_000_000)
        #expect(a.snapshot == b.snapshot)
        #expect(a.snapshot.pose.x.bitPattern == b.snapshot.pose.x.bitPattern)
        #expect(a.records == b.records)
        // The same accounting (the latency figures are virtual time too).
        #expect(a.scheduler.snapshot().tasks == b.scheduler.snapshot().tasks)
        #expect(a.status.verdicts == b.status.verdicts && a.status.latchCause == b.status.latchCause)
        #expect(a.status.pose.x.bitPattern == b.status.pose.x.bitPattern && a.status.pose.y.bitPattern == b.status.pose.y.bitPattern)
    }

    static let teleop = """
      - name: teleop
        kind: teleop
        period_ms: 20
        critical: true
        channels: [wheel_left, wheel_right]
        priority: 100
        timeout_ms: 200
        input: gamepad
        max_linear: 0.5
        max_angular: 1.5

    """

    static let teleopOnly = teleop + obstacleStop

    static let obstacleStop = """
      - name: obstacle_stop
        kind: obstacle_stop
        channels: [wheel_left, wheel_right]
        range_sensor: range
        stop_distance: 0.30

    """

    static func waypoints(_ points: [(Double, Double)], speed: Double = 0.3) -> String {
        """
          - name: waypoints
            kind: waypoints
            period_ms: 20
            critical: true
            channels: [wheel_left, wheel_right]
            priority: 50
            timeout_ms: 100
            points: [\(points.map { "[\($0.0), \($0.1)]" }.joined(separator: ", "))]
            speed: \(speed)
            tolerance: 0.1

        """ + obstacleStop
    }
}

/// Replaces the `policies:` section of a configuration's text.
func policies(_ yaml: String, _ section: String) -> String {
    guard let start = yaml.range(of: "\npolicies:\n"), let end = yaml.range(of: "\nactuators:\n") else { return yaml }
    return String(yaml[..<start.upperBound]) + section + String(yaml[end.lowerBound...])
}

import SimulatorBridge
import Actuators
import Codecs
import Foundation
import RTScheduler
import RobotSim
import SafetyGuard
import Synchronization
import Testing
import Transports
@testable import AIOSRobot

/// The whole data path on virtual time: simulated rover bytes → FrameSensorInput → scheduler →
/// obstacle-avoiding policy → SafetyGuard → ActuatorSet → SimulatorBackend → the rover's firmware,
/// with a scripted gamepad through GamepadInput. Everything runs on the test thread in lockstep,
/// so a run is a pure function of its configuration.
final class LockstepLoop: Sendable {
    struct Outcome: Equatable {
        var rover: RoverSnapshot
        var audit: [AuditRecord]
        var status: RoverRuntime.Status
        var driveReleases: Int
        var driveMisses: Int
    }

    let clock = VirtualClock()
    let scheduler: Scheduler
    let rover: RoverSimulation
    let runtime: RoverRuntime
    let pad: Mutex<[SimulatedGamepad]>
    private let audit = Mutex<[AuditRecord]>([])

    init(seed: UInt64, gamepad script: [SimulatedGamepad.Step] = [], startYaw: Double = 0,
         workspace: Workspace? = nil, simulation: RoverSimulationConfig = RoverSimulationConfig(),
         startLatched: Bool = false) throws {
        var config = simulation
        config.seed = seed
        config.start.yaw = startYaw
        var runtimeConfig = RoverRuntime.Configuration()
        runtimeConfig.initialPose = (config.start.x, config.start.y, config.start.yaw)
        runtimeConfig.workspace = workspace
        runtimeConfig.startLatched = startLatched
        rover = RoverSimulation(config: config)
        let backend = SimulatorBackend(name: "rover", rover: rover, mappings: [
            .init(channel: ChannelID(index: 0), motor: 0, mode: .velocity),
            .init(channel: ChannelID(index: 1), motor: 1, mode: .velocity),
        ])
        scheduler = Scheduler(clock: clock)
        let clock = self.clock
        runtime = try RoverRuntime(configuration: runtimeConfig, scheduler: scheduler) { seal in
            try ActuatorSet(seal: seal, backends: [backend], clock: clock)
        }
        pad = Mutex([try SimulatedGamepad(script: script)])
        runtime.actuators.start()
    }

    /// Presses keys on the gamepad at `at` and releases them at `release` (simulated ns).
    func press(_ keys: [String], at: Int64, release: Int64) {
        let steps: [SimulatedGamepad.Step] = [.init(at: at, keys.map { .press($0) }), .init(at: release, keys.map { .release($0) })]
        guard let extra = try? SimulatedGamepad(script: steps) else {
            Issue.record("unknown key in \(keys)")
            return
        }
        pad.withLock { $0.append(extra) }
    }

    /// Advances the world and robotd together in 1 ms steps.
    func run(until end: Int64) {
        var t = rover.time
        while t < end {
            t += 1_000_000
            rover.advance(to: t) { bytes, at in runtime.sensors.feed(bytes, arrival: at) }
            let records = pad.withLock { pads in pads.indices.flatMap { pads[$0].advance(to: t) } }
            if !records.isEmpty { records.withUnsafeBytes { runtime.gamepad.feed(bytes: $0, arrival: t) } }
            scheduler.advance(to: Instant(nanoseconds: t))
        }
    }

    var outcome: Outcome {
        let drive = scheduler.snapshot().task(named: "drive")
        let records = audit.withLock { $0 += runtime.audit.drain(); return $0 }
        return Outcome(rover: rover.snapshot(), audit: records, status: runtime.status,
                       driveReleases: Int(drive?.releases ?? 0), driveMisses: Int(drive?.misses ?? 0))
    }
}

@Suite("Lockstep: sensors → scheduler → policy → guard → simulator, deterministic")
struct LockstepLoopTests {
    @Test(arguments: [UInt64(1), 2, 3, 4, 5, 6, 7, 8])
    func when_the_rover_wanders_the_arena_expect_it_to_travel_without_collisions_and_no_missed_deadlines(seed: UInt64) throws {
        // Different noise and a different start heading per case: eight different paths.
        let loop = try LockstepLoop(seed: seed, startYaw: Double(seed) * 0.7)
        loop.run(until: 30_000_000_000)
        let o = loop.outcome
        #expect(o.rover.odometer > 5)
        #expect(o.rover.collisions == 0)
        #expect(o.driveReleases == 1501 && o.driveMisses == 0)
        // Fail closed at start: until the first range frame (50 ms) motion is held, so the drive
        // task's first commands (0, 20, 40 ms; two wheels each) are refused as `holding` — and none after.
        let rejections = o.audit.filter { $0.kind == .rejected }
        #expect(rejections.count == 6 && rejections.allSatisfy { $0.rejectReason == .holding && $0.at.nanoseconds <= 50_000_000 })
        #expect(o.status.verdicts.rejected == 6 && o.status.verdicts.stopped == 0 && o.status.verdicts.passed > 2500)
        #expect(o.rover.firmware.framesRejected == 0 && o.rover.firmware.watchdogTrips == 0)
        #expect(loop.runtime.sensors.counters.posted.load(ordering: .relaxed) >= 599 + 1499)  // range 20 Hz + encoders 50 Hz
        // Odometry from the encoders follows the simulator's ground truth (no slip here): within 5 cm after 30 s.
        #expect(hypot(o.status.pose.x - o.rover.pose.x, o.status.pose.y - o.rover.pose.y) < 0.05)
    }

    /// The workspace ladder on the odometry pose: a box that ends 2 m ahead of the rover. It warns,
    /// then holds (zero motion, commands refused) before the pose is more than `stopDistance` out.
    @Test func when_the_rover_reaches_the_workspace_edge_expect_warn_then_hold_and_it_stays_inside_the_stop_band() throws {
        let box = Workspace(polygon: [.init(x: -4.5, y: -3), .init(x: -1.5, y: -3), .init(x: -1.5, y: 3), .init(x: -4.5, y: 3)],
                            warnDistance: 0.5, stopDistance: 0.3)
        let loop = try LockstepLoop(seed: 3, workspace: box)
        for second in 1...15 {  // drained every second, as telemetry would: the audit ring holds 1024 records
            loop.run(until: Int64(second) * 1_000_000_000)
            _ = loop.outcome
        }
        let o = loop.outcome
        #expect(o.status.workspaceHold)
        #expect(o.rover.pose.x > -1.6 && o.rover.pose.x < -1.5 + 0.3)  // held just past the edge, inside the stop band
        #expect(abs(o.rover.linearVelocity) < 0.01)
        #expect(o.audit.contains { $0.fault == .workspace && $0.kind == .warn })
        #expect(o.audit.contains { $0.fault == .workspace && $0.kind == .hold })
        #expect(!loop.runtime.isLatched)  // a hold, not a stop
    }

    @Test func when_the_gamepad_estop_is_pressed_expect_the_latch_the_wheels_de_energised_and_the_rover_stopped() throws {
        let loop = try LockstepLoop(seed: 1, gamepad: [.init(at: 6_000_000_000, [.press("BTN_EAST")])])
        loop.run(until: 5_999_000_000)
        let before = loop.outcome
        #expect(before.rover.odometer > 1 && abs(before.rover.linearVelocity) > 0.1)
        loop.run(until: 9_000_000_000)
        let after = loop.outcome
        #expect(loop.runtime.isLatched)
        #expect(!after.rover.leftEnergised && !after.rover.rightEnergised)
        #expect(abs(after.rover.linearVelocity) < 0.01)
        #expect(after.rover.odometer - before.rover.odometer < 0.5)  // coasting distance only
        #expect(after.status.verdicts.stopped > 100)  // every policy command while latched gets a stop verdict
        #expect(after.audit.contains { $0.fault == .emergencyStopInput })
    }

    /// Re-arming: the reset key releases the latch; the policy's next fresh commands move the rover
    /// again, ramping from zero under the acceleration limit (nothing from before the stop resumes).
    @Test func when_reset_after_an_estop_expect_motion_only_from_fresh_commands_ramping_from_rest() throws {
        let loop = try LockstepLoop(seed: 1, gamepad: [
            .init(at: 3_000_000_000, [.press("BTN_EAST")]),
            .init(at: 3_100_000_000, [.release("BTN_EAST")]),
            .init(at: 5_950_000_000, [.press("BTN_START")]),
            .init(at: 6_000_000_000, [.release("BTN_START")]),  // a reset acts on the key's release
        ])
        loop.run(until: 5_990_000_000)
        #expect(loop.runtime.isLatched && abs(loop.outcome.rover.linearVelocity) < 0.01)
        loop.run(until: 6_100_000_000)
        let early = loop.outcome
        #expect(!loop.runtime.isLatched && early.status.resets == 1)
        // 100 ms after the reset at ≤ 40 rad/s² the wheels can be at ≤ 4 rad/s (0.2 m/s).
        #expect(early.rover.wheelSpeedLeft <= 4.0 + 1e-6 && early.rover.leftEnergised)
        loop.run(until: 8_000_000_000)
        #expect(loop.outcome.rover.linearVelocity > 0.1 || loop.outcome.status.turning)
    }

    /// Invariant 3: a critical loop that keeps missing is a fault that stops the robot. A
    /// higher-priority task that eats the CPU from 4 s on starves the drive task.
    @Test func when_the_drive_task_keeps_missing_its_deadline_expect_a_deadline_fault_and_a_guard_stop() throws {
        let loop = try LockstepLoop(seed: 2)
        let clock = loop.clock
        loop.scheduler.addPeriodic("hog", PeriodicSpec(period: .milliseconds(50), phase: .seconds(4), priority: .critical)) { _ in
            clock.advance(by: .milliseconds(49))
        }
        loop.run(until: 3_900_000_000)
        #expect(loop.outcome.status.deadlineFaults == 0 && !loop.runtime.isLatched)
        loop.run(until: 6_000_000_000)
        let o = loop.outcome
        #expect(o.status.deadlineFaults >= 1 && loop.runtime.isLatched)
        #expect(o.audit.contains { $0.fault == .deadlineFault })
        #expect(o.driveMisses >= 5)
    }

    @Test func when_the_same_run_is_repeated_expect_bit_identical_trajectory_audit_and_accounting() throws {
        let script: [SimulatedGamepad.Step] = [.init(at: 7_000_000_000, [.press("BTN_EAST")])]
        let a = try LockstepLoop(seed: 5, gamepad: script)
        let b = try LockstepLoop(seed: 5, gamepad: script)
        a.run(until: 10_000_000_000)
        b.run(until: 10_000_000_000)
        #expect(a.outcome == b.outcome)
        #expect(a.outcome.rover.pose.x.bitPattern == b.outcome.rover.pose.x.bitPattern)
    }
}

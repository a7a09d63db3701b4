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
/// with a scripted gamepad e-stop through GamepadInput. Everything runs on the test thread in
/// lockstep, so the run is a pure function of its configuration.
final class LockstepLoop: Sendable {
    struct State {
        var guardian: SafetyGuard
        var policy = ObstacleAvoidingDrive()
        var range = Double.infinity
        var passed = 0
        var clamped = 0
        var rejected = 0
        var stopped = 0
    }

    struct Outcome: Equatable {
        var rover: RoverSnapshot
        var audit: [AuditRecord]
        var verdicts: [Int]
        var driveReleases: Int
        var driveMisses: Int
    }

    let clock = VirtualClock()
    let scheduler: Scheduler
    let rover: RoverSimulation
    let actuators: ActuatorSet
    final class Box: Sendable {
        let state: Mutex<State>
        init(_ s: State) { state = Mutex(s) }
        func withLock<R>(_ body: (inout State) -> R) -> R { state.withLock { body(&$0) } }
    }
    let state: Box
    let sensors: FrameSensorInput
    let gamepad: GamepadInput
    let pad: Mutex<SimulatedGamepad>
    private let audit = Mutex<[AuditRecord]>([])

    init(seed: UInt64, estopAt: Int64?, startYaw: Double = 0) throws {
        var config = RoverSimulationConfig()
        config.seed = seed
        config.start.yaw = startYaw
        rover = RoverSimulation(config: config)
        let guardian = try SafetyGuard(configuration: GuardConfiguration(
            channels: ["wheel_left", "wheel_right"].map {
                ChannelConfiguration(name: $0, limits: .continuous(.velocity(maxVelocity: 12, maxAcceleration: 40)),
                                     watchdogTimeout: .milliseconds(100))
            },
            sensors: [RequiredSensor(name: "range", maxAge: .milliseconds(250), reaction: .stop(.one))]))
        let state = Box(State(guardian: guardian))
        self.state = state
        let actuators = try ActuatorSet(backends: [SimulatorBackend(name: "rover", rover: rover, mappings: [
            .init(channel: ChannelID(index: 0), motor: 0, mode: .velocity),
            .init(channel: ChannelID(index: 1), motor: 1, mode: .velocity),
        ])])
        self.actuators = actuators
        scheduler = Scheduler(clock: clock)
        let write: @Sendable (ApprovedCommand) -> Void = { actuators.write($0) }
        let rangeID = guardian.sensor(named: "range")
        let rangeSource = scheduler.addSource("range", queue: QueueSpec(capacity: 8, overflow: .dropOldest),
                                              subscription: Subscription(priority: .high, relativeDeadline: .milliseconds(10))) { event in
            guard case .values(let v) = event.payload else { return }
            state.withLock { s in
                s.range = ObstacleAvoidingDrive.effectiveRange(value: v[0], status: Int(v[1]))
                if let rangeID { s.guardian.noteSensor(rangeID, at: event.release) }
            }
        }
        sensors = FrameSensorInput(sources: .init(range: rangeSource), expectedIMUHz: 200)
        let estop = scheduler.addSource("estop", queue: QueueSpec(capacity: 4, overflow: .reject),
                                        subscription: Subscription(priority: .critical, relativeDeadline: .milliseconds(1))) { event in
            state.withLock { $0.guardian.trigger(.emergencyStopInput, category: .zero, at: event.release, emit: write) }
        }
        let ignore: EventHandler = { _ in }
        let axes = scheduler.addSource("axes", queue: QueueSpec(capacity: 8, overflow: .keepLatestPerKey),
                                       subscription: Subscription(priority: .normal, relativeDeadline: .milliseconds(50)), handler: ignore)
        let buttons = scheduler.addSource("buttons", queue: QueueSpec(capacity: 8, overflow: .dropOldest),
                                          subscription: Subscription(priority: .normal, relativeDeadline: .milliseconds(50)), handler: ignore)
        gamepad = try GamepadInput(mapping: InputMapping(keys: [.init(code: "BTN_EAST", action: .emergencyStop)]),
                                   sources: .init(axes: axes, buttons: buttons, emergencyStop: estop))
        pad = Mutex(try SimulatedGamepad(script: estopAt.map { [.init(at: $0, [.press("BTN_EAST")])] } ?? []))
        let clock = clock
        scheduler.addPeriodic("drive", PeriodicSpec(period: .milliseconds(20), priority: .high)) { event in
            state.withLock { s in
                let (left, right) = s.policy.step(range: s.range)
                for (channel, speed) in [(0, left), (1, right)] {
                    let command = Command(channel: ChannelID(index: channel), value: .continuous(speed), origin: .policy,
                                          issuedAt: event.release, validUntil: event.release + .milliseconds(60))
                    switch s.guardian.check(command, now: clock.now()) {
                    case .pass(let approved): s.passed += 1; actuators.write(approved)
                    case .clamped(let approved, _): s.clamped += 1; actuators.write(approved)
                    case .rejected: s.rejected += 1
                    case .stop: s.stopped += 1
                    }
                }
            }
        }
        scheduler.addPeriodic("guard", PeriodicSpec(period: .milliseconds(10), priority: .high)) { event in
            state.withLock { $0.guardian.tick(now: event.release, emit: write) }
        }
        actuators.start()
    }

    /// Advances the world and robotd together in 1 ms steps.
    func run(until end: Int64) {
        var t = rover.time
        while t < end {
            t += 1_000_000
            rover.advance(to: t) { bytes, at in sensors.feed(bytes, arrival: at) }
            let records = pad.withLock { $0.advance(to: t) }
            if !records.isEmpty { records.withUnsafeBytes { gamepad.feed(bytes: $0, arrival: t) } }
            scheduler.advance(to: Instant(nanoseconds: t))
        }
    }

    var outcome: Outcome {
        let s = state.withLock { $0 }
        let drive = scheduler.snapshot().task(named: "drive")
        let records = audit.withLock { $0 += s.guardian.audit.drain(); return $0 }
        return Outcome(rover: rover.snapshot(), audit: records, verdicts: [s.passed, s.clamped, s.rejected, s.stopped],
                       driveReleases: Int(drive?.releases ?? 0), driveMisses: Int(drive?.misses ?? 0))
    }
}

@Suite("Lockstep: sensors → scheduler → policy → guard → simulator, deterministic")
struct LockstepLoopTests {
    @Test(arguments: [UInt64(1), 2, 3, 4, 5, 6, 7, 8])
    func when_the_rover_wanders_the_arena_expect_it_to_travel_without_collisions_and_no_missed_deadlines(seed: UInt64) throws {
        // Different noise and a different start heading per case: eight different paths.
        let loop = try LockstepLoop(seed: seed, estopAt: nil, startYaw: Double(seed) * 0.7)
        loop.run(until: 30_000_000_000)
        let o = loop.outcome
        #expect(o.rover.odometer > 5)
        #expect(o.rover.collisions == 0)
        #expect(o.driveReleases == 1501 && o.driveMisses == 0)
        #expect(o.verdicts[2] == 0 && o.verdicts[3] == 0)  // nothing rejected, no stop
        #expect(o.rover.firmware.framesRejected == 0 && o.rover.firmware.watchdogTrips == 0)
        #expect(loop.sensors.counters.posted.load(ordering: .relaxed) >= 599)  // 20 Hz range for 30 s
    }

    @Test func when_the_gamepad_estop_is_pressed_expect_the_latch_the_wheels_de_energised_and_the_rover_stopped() throws {
        let loop = try LockstepLoop(seed: 1, estopAt: 6_000_000_000)
        loop.run(until: 6_000_000_000)
        let before = loop.outcome
        #expect(before.rover.odometer > 1 && abs(before.rover.linearVelocity) > 0.1)
        loop.run(until: 9_000_000_000)
        let after = loop.outcome
        #expect(loop.state.withLock { $0.guardian.latch.isLatched })
        #expect(!after.rover.leftEnergised && !after.rover.rightEnergised)
        #expect(abs(after.rover.linearVelocity) < 0.01)
        #expect(after.rover.odometer - before.rover.odometer < 0.5)  // coasting distance only
        #expect(after.verdicts[3] > 100)  // every policy command while latched is refused with a stop verdict
        #expect(after.audit.contains { $0.fault == .emergencyStopInput })
    }

    @Test func when_the_same_run_is_repeated_expect_bit_identical_trajectory_audit_and_accounting() throws {
        let a = try LockstepLoop(seed: 5, estopAt: 7_000_000_000)
        let b = try LockstepLoop(seed: 5, estopAt: 7_000_000_000)
        a.run(until: 10_000_000_000)
        b.run(until: 10_000_000_000)
        #expect(a.outcome == b.outcome)
        #expect(a.outcome.rover.pose.x.bitPattern == b.outcome.rover.pose.x.bitPattern)
    }
}

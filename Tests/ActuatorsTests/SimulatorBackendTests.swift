import SimulatorBridge
import Foundation
import Glibc
import RTScheduler
import RobotSim
import SafetyGuard
import Synchronization
import TestSupport
import Testing
import Transports
@testable import Actuators

/// A guard for the simulated rover's wheels (rad/s) and the rig's heater, and the approvals it gives.
struct SimGuard {
    var guardian: SafetyGuard
    init() throws {
        guardian = try SafetyGuard(configuration: GuardConfiguration(channels: [
            ChannelConfiguration(name: "wheel_left", limits: .continuous(.velocity(maxVelocity: 15, maxAcceleration: 40))),
            ChannelConfiguration(name: "wheel_right", limits: .continuous(.velocity(maxVelocity: 15, maxAcceleration: 40))),
            ChannelConfiguration(name: "heater", limits: .discrete(DiscreteLimits()), isMotion: false),
        ]))
    }

    mutating func approve(_ channel: Int, _ value: CommandValue, at ns: Int64) throws -> ApprovedCommand {
        let t = Instant(nanoseconds: ns)
        let c = Command(channel: ChannelID(index: channel), value: value, origin: .policy, issuedAt: t, validUntil: t + .milliseconds(200))
        return try #require(guardian.check(c, now: t).approved)
    }
}

/// The simulated world's time as the actuator set's clock (the seal's validity check reads it).
final class SimulationClock: SchedulerClock {
    let read: @Sendable () -> Int64
    init(_ read: @escaping @Sendable () -> Int64) { self.read = read }
    func now() -> Instant { Instant(nanoseconds: read()) }
    var isVirtual: Bool { true }
}

let wheelMappings: [SerialFrameBackend.Mapping] = [
    .init(channel: ChannelID(index: 0), motor: 0, mode: .velocity),
    .init(channel: ChannelID(index: 1), motor: 1, mode: .velocity),
]

/// Runs the lockstep rover for `duration` while writing the guard's approval of `speed` on both
/// wheels every 20 ms.
func driveForward(_ rover: RoverSimulation, _ set: ActuatorSet, _ guardian: inout SimGuard, speed: Double, for duration: Int64) throws {
    let end = rover.time + duration
    while rover.time < end {
        let now = rover.time
        for channel in 0..<2 { set.write(try guardian.approve(channel, .continuous(speed), at: now)) }
        rover.advance(to: now + 20_000_000) { _, _ in }
    }
}

@Suite("Simulator back end: approved commands drive the simulated devices; safe states reach them", .serialized)
struct SimulatorBackendTests {
    @Test func when_approved_commands_flow_expect_the_rover_to_drive_and_safe_stop_to_de_energise_it() throws {
        var guardian = try SimGuard()
        let rover = RoverSimulation()
        let backend = SimulatorBackend(name: "rover", rover: rover, mappings: wheelMappings)
        let set = try ActuatorSet(seal: guardian.guardian.seal, backends: [backend], clock: SimulationClock { rover.time })
        set.start()
        try driveForward(rover, set, &guardian, speed: 10, for: 1_000_000_000)
        let moving = rover.snapshot()
        #expect(moving.leftEnergised && abs(moving.linearVelocity - 0.5) < 0.02)
        #expect(moving.firmware.commandsApplied == 100 && moving.firmware.framesRejected == 0)
        set.safeStop(reason: "test")
        rover.advance(by: 10_000_000) { _, _ in }
        #expect(!rover.snapshot().leftEnergised && !rover.snapshot().rightEnergised)
        rover.advance(by: 3_000_000_000) { _, _ in }
        #expect(abs(rover.snapshot().linearVelocity) < 1e-3)
        #expect(set.write(try guardian.approve(0, .continuous(5), at: rover.time)) == .refused)
    }

    /// A pulled cable: the write fails as disconnected, the safe state cannot get through (and the
    /// fault says so), and the rover's own firmware watchdog stops it — defence in depth.
    @Test func when_the_cable_is_pulled_expect_a_disconnect_fault_and_the_firmware_watchdog_to_stop_the_rover() throws {
        var guardian = try SimGuard()
        let rover = RoverSimulation()
        let faults = Mutex<[ActuatorSet.Fault]>([])
        let set = try ActuatorSet(seal: guardian.guardian.seal, backends: [SimulatorBackend(name: "rover", rover: rover, mappings: wheelMappings)],
                                  clock: SimulationClock { rover.time }) { f in
            faults.withLock { $0.append(f) }
        }
        set.start()
        try driveForward(rover, set, &guardian, speed: 10, for: 500_000_000)
        rover.setLinkUp(false)
        let outcome = set.write(try guardian.approve(0, .continuous(10), at: rover.time))
        #expect(outcome == .failed(ActuatorError(.disconnected, backend: "rover")))
        #expect(faults.withLock { $0.count } == 1 && faults.withLock { $0[0].safeStateApplied } == false)
        #expect(set.state(of: "rover") == .inactive)
        rover.advance(by: 600_000_000) { _, _ in }
        let s = rover.snapshot()
        #expect(!s.leftEnergised && s.firmware.watchdogTrips == 2)
        // Re-plugged: reactivation sends the safe state first; nothing from before resumes.
        rover.setLinkUp(true)
        let before = rover.snapshot().firmware.deenergiseCommands
        #expect(set.reactivate("rover"))
        #expect(rover.snapshot().firmware.deenergiseCommands == before + 2)
    }

    @Test func when_sigterm_arrives_expect_the_simulated_rover_de_energised() throws {
        var guardian = try SimGuard()
        let rover = RoverSimulation()
        let set = try ActuatorSet(seal: guardian.guardian.seal, backends: [SimulatorBackend(name: "rover", rover: rover, mappings: wheelMappings)],
                                  clock: SimulationClock { rover.time })
        set.start()
        try driveForward(rover, set, &guardian, speed: 10, for: 300_000_000)
        let done = DispatchSemaphore(value: 0)
        let handler = SafeStopOnSignals(actuators: set) { _ in done.signal() }
        kill(getpid(), SIGTERM)
        #expect(done.wait(timeout: .now() + 5) == .success)
        handler.cancel()
        let s = rover.snapshot()
        #expect(!s.leftEnergised && !s.rightEnergised && s.firmware.deenergiseCommands >= 2)
    }

    @Test func when_the_heater_channel_is_approved_expect_the_rig_heater_on_and_safe_stop_to_turn_it_off() throws {
        var guardian = try SimGuard()
        // One command for a minute of heating: the relay's own command time-out is not under test.
        var config = RigSimulationConfig()
        config.relayTimeout = nil
        let rig = RigSimulation(config: config)
        let backend = SimulatorBackend(name: "rig", rig: rig, routes: [
            .init(channel: ChannelID(index: 2), name: "heater", topic: "sim/rig/heater/set", stateNames: ["off", "on"],
                  safeValue: .discrete(0)),
        ])
        let set = try ActuatorSet(seal: guardian.guardian.seal, backends: [backend], clock: SimulationClock { rig.time })
        set.start()
        #expect(set.write(try guardian.approve(2, .discrete(1), at: 1_000_000)) == .written)
        rig.advance(to: 60_000_000_000) { _, _, _, _ in }
        #expect(rig.snapshot().heaterOn && rig.snapshot().temperature > 25)
        set.safeStop(reason: "test")
        #expect(!rig.snapshot().heaterOn && rig.snapshot().counters.commandsIgnored == 0)
    }

    /// Real-time mode: the serial-frame back end on the simulator's pty (termios path), exactly as
    /// it would drive a motor driver on /dev/ttyUSB0.
    @Test func when_the_serial_backend_drives_the_real_time_simulator_expect_motion_then_de_energised_on_safe_stop() throws {
        var options = SimulatorRunner.Options()
        options.rover.arena = Arena(halfWidth: 20, halfHeight: 20, obstacles: [])
        let runner = try SimulatorRunner(options: options)
        try runner.start()
        defer { runner.stop() }
        let port = try TermiosSerialPort(path: runner.roverDevicePath, settings: SerialSettings())
        defer { port.close() }
        var guardian = try SimGuard()
        // Threaded, as the daemon runs it; approvals are stamped on a counter, so the seal's clock
        // is virtual (at 0, before every approval's validity ends).
        let set = try ActuatorSet(seal: guardian.guardian.seal,
                                  backends: [SerialFrameBackend(name: "rover", mappings: wheelMappings, writer: SerialPortWriter(port: port))],
                                  clock: VirtualClock(), mode: .threaded(.init()))
        set.start()
        let begin = Date()
        var t: Int64 = 0
        while Date().timeIntervalSince(begin) < 0.6 {
            t += 20_000_000
            for channel in 0..<2 { set.write(try guardian.approve(channel, .continuous(10), at: t)) }
            usleep(20_000)
        }
        let moving = runner.rover.snapshot()
        #expect(moving.leftEnergised && moving.odometer > 0.1)
        set.safeStop(reason: "test")
        #expect(waitUntil { !runner.rover.snapshot().leftEnergised && !runner.rover.snapshot().rightEnergised })
    }
}

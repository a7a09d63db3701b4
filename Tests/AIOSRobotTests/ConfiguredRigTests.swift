import Actuators
import Foundation
import RTScheduler
import RobotConfig
import RobotSim
import SafetyGuard
import Synchronization
import Testing
import Transports
@testable import AIOSRobot

/// Any rig configuration driving the simulated rig on virtual time: the rig's publications reach
/// every MQTT endpoint of the runtime through a lockstep broker that a test can take down, and
/// the configuration's `mqtt` back ends publish into the rig's command parser.
final class ConfiguredRigLoop: Sendable {
    let clock = VirtualClock()
    let scheduler: Scheduler
    let rig: RigSimulation
    let runtime: RobotRuntime
    let broker: LockstepBroker
    private let handlers: [@Sendable (MQTTMessage) -> Void]
    /// The rig's true temperature once per simulated second.
    let truth = Mutex<[(t: Int64, celsius: Double)]>([])
    let heaterSwitches = Mutex<[(Int64, String)]>([])
    /// The guard's audit, drained every simulated 10 s (its ring holds 1024 records).
    let audit = Mutex<[AuditRecord]>([])

    init(_ configuration: RobotConfiguration, rig rigConfig: RigSimulationConfig = RigSimulationConfig()) throws {
        let rig = RigSimulation(config: rigConfig)
        self.rig = rig
        let broker = LockstepBroker(rig)
        self.broker = broker
        scheduler = Scheduler(clock: clock)
        let clock = self.clock
        let backends = try BackendFactory(configuration: configuration, publisher: broker).build().map(\.backend)
        let holder = Mutex<RobotRuntime?>(nil)
        var options = RobotRuntime.Options()
        options.brokerLink = { broker.isConnected }
        runtime = try RobotRuntime(configuration: configuration, scheduler: scheduler, options: options) { seal in
            try ActuatorSet(seal: seal, backends: backends, clock: clock) { fault in
                // Inline: reported from inside the control path; the runtime posts it (no lock taken).
                _ = holder.withLock { $0 }?.reportActuatorFault(lostLink: fault.error.code == .disconnected, at: clock.now())
            }
        }
        holder.withLock { [runtime] in $0 = runtime }
        handlers = runtime.endpoints.compactMap { if case .mqtt(let m) = $0.endpoint { m.handle } else { nil } }
        runtime.actuators.start()
    }

    func run(until end: Int64) {
        var t = rig.time
        while t < end {
            t += 100_000_000
            rig.advance(to: t) { topic, payload, _, at in
                if topic.hasSuffix("heater/state") { heaterSwitches.withLock { $0.append((at, String(decoding: payload, as: UTF8.self))) } }
                guard broker.isConnected else { return }
                for handle in handlers { handle(MQTTMessage(topic: topic, payload: payload, arrival: at)) }
            }
            scheduler.advance(to: Instant(nanoseconds: t))
            if t % 1_000_000_000 == 0 { truth.withLock { [rig] in $0.append((t, rig.snapshot().temperature)) } }
            if t % 10_000_000_000 == 0 { audit.withLock { [runtime] in $0 += runtime.audit.drain() } }
        }
    }

    /// What an operator's MQTT client would publish, delivered through the broker (if it is up).
    func publish(_ topic: String, _ text: String, retained: Bool = false) {
        guard broker.isConnected else { return }
        for handle in handlers { handle(MQTTMessage(topic: topic, payload: Array(text.utf8), qos: 1, retained: retained, arrival: rig.time)) }
    }

    var status: RuntimeStatus { runtime.status }
}

@Suite("Configured rig: examples/iot-rig-sim.yaml in lockstep with the simulated rig")
struct ConfiguredRigTests {
    /// Heat and trim: the heater switched rarely, the fan's PID holds the setpoint. After settling
    /// the chamber stays within ±0.5 °C of it (ground truth), and the heater never switches faster
    /// than its minimum on/off times allow.
    @Test func when_regulating_expect_the_setpoint_held_within_half_a_degree_after_settling() throws {
        let loop = try ConfiguredRigLoop(try Examples.configuration("iot-rig-sim.yaml"))
        loop.run(until: 1_800_000_000_000)
        let late = loop.truth.withLock { $0 }.filter { $0.t > 900_000_000_000 }.map(\.celsius)
        #expect(late.count == 900)
        #expect((late.min() ?? 0) > 34.5 && (late.max() ?? 99) < 35.5, "range \(late.min() ?? .nan)…\(late.max() ?? .nan)")
        let switches = Array(loop.heaterSwitches.withLock { $0 }.dropFirst())
        #expect(zip(switches.dropFirst(), switches).allSatisfy { $0.0 - $1.0 >= 10_000_000_000 })
        #expect(!loop.status.latched && loop.rig.snapshot().counters.commandsIgnored == 0)
        #expect(loop.scheduler.snapshot().task(named: "thermostat")?.misses == 0)
    }

    /// A bad setpoint (80 °C, above what the chamber may reach): the over-temperature interlock at
    /// 60 °C locks the heater off, and the chamber never goes beyond it by more than the sensor's
    /// noise and one sample's heating.
    @Test func when_told_a_bad_setpoint_expect_the_interlock_to_hold_the_chamber_below_its_limit() throws {
        let loop = try ConfiguredRigLoop(try Examples.configuration("iot-rig-sim.yaml") {
            $0 = $0.replacingOccurrences(of: "setpoint: 35.0", with: "setpoint: 80.0")
        })
        loop.run(until: 2_400_000_000_000)
        let truth = loop.truth.withLock { $0 }.map(\.celsius)
        #expect((truth.max() ?? 99) < 60.5, "max \(truth.max() ?? .nan)")
        #expect((truth.max() ?? 0) > 59)  // it did get there: the interlock, not a weak heater, held it
        #expect(loop.audit.withLock { $0 }.contains { $0.fault == .valueInterlock })
        #expect(!loop.rig.snapshot().heaterOn)
    }

    /// The broker goes away: the relays switch off by their own time-out (the rig's), robotd sees the
    /// link down (a stop); when the broker is back the link is up, a reset is accepted, and
    /// regulation resumes.
    @Test func when_the_broker_restarts_expect_relays_off_by_their_own_timeout_then_recovery_after_a_reset() throws {
        let loop = try ConfiguredRigLoop(try Examples.configuration("iot-rig-sim.yaml"))
        loop.run(until: 300_000_000_000)
        #expect(loop.rig.snapshot().heaterOn || loop.rig.snapshot().fanDuty > 0)
        loop.broker.up.store(false, ordering: .relaxed)
        loop.run(until: 320_000_000_000)
        #expect(loop.status.latched && loop.status.causes.contains(.connectionLost))
        let off = loop.rig.snapshot()
        #expect(!off.heaterOn && off.fanDuty == 0 && off.counters.relayTimeouts >= 1)
        loop.broker.up.store(true, ordering: .relaxed)
        // As the daemon does on the client's reconnect: the back end comes back in its safe state.
        loop.runtime.requestReactivation(of: "rig_relays", at: Instant(nanoseconds: loop.rig.time))
        loop.run(until: 322_000_000_000)
        loop.publish("robotd/iot-rig-sim/estop/reset", "reset")
        loop.run(until: 900_000_000_000)
        #expect(!loop.status.latched && loop.status.resets == 1, "causes \(loop.status.causes)")
        #expect(abs(loop.rig.snapshot().temperature - 35) < 1)
    }

    @Test func when_a_remote_stop_arrives_expect_a_latch_and_a_retained_one_ignored() throws {
        let loop = try ConfiguredRigLoop(try Examples.configuration("iot-rig-sim.yaml"))
        loop.publish("robotd/iot-rig-sim/estop", "stop", retained: true)
        loop.run(until: 60_000_000_000)
        #expect(!loop.status.latched && loop.runtime.remoteStopCounters.retainedIgnored.load(ordering: .relaxed) == 1)
        loop.publish("robotd/iot-rig-sim/estop", "stop")
        loop.run(until: 61_000_000_000)
        #expect(loop.status.latched && loop.status.latchCause == .remoteStop && loop.status.remoteStops == 1)
        #expect(!loop.rig.snapshot().heaterOn)
    }
}

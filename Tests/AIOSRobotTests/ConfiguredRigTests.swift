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

/// The broker between robotd and the simulated rig in lockstep, collapsed to function calls, that
/// a test can take away: while down, publishes fail (as libmosquitto's do without a connection)
/// and the rig's readings reach no one.
final class LockstepBroker: MQTTPublishing {
    let rig: RigSimulation
    let up = Atomic<Bool>(true)
    init(_ rig: RigSimulation) { self.rig = rig }
    var isConnected: Bool { up.load(ordering: .relaxed) }
    func publish(topic: String, payload: [UInt8], qos: Int, retain: Bool) throws {
        guard isConnected else { throw ActuatorError(.disconnected, backend: "lockstep broker") }
        rig.handle(topic: topic, payload: payload)
    }
}

/// Actuator faults as an actuator set reported them.
final class FaultLog: Sendable {
    let list = Mutex<[ActuatorSet.Fault]>([])
}

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
    /// While false, the rig's publications do not reach robotd (a sensor that stopped publishing).
    let readingsFlow = Atomic<Bool>(true)
    /// Actuator faults the set reported (as the daemon would hand them to the runtime).
    let faults = FaultLog()

    /// `options.brokerLink` is the lockstep broker's (set here).
    init(_ configuration: RobotConfiguration, rig rigConfig: RigSimulationConfig = RigSimulationConfig(),
         options: RobotRuntime.Options = RobotRuntime.Options()) throws {
        let rig = RigSimulation(config: rigConfig)
        self.rig = rig
        let broker = LockstepBroker(rig)
        self.broker = broker
        scheduler = Scheduler(clock: clock)
        let clock = self.clock
        let backends = try BackendFactory(configuration: configuration, publisher: broker).build().map(\.backend)
        let holder = Mutex<RobotRuntime?>(nil)
        var options = options
        options.brokerLink = { broker.isConnected }
        let faults = self.faults
        runtime = try RobotRuntime(configuration: configuration, scheduler: scheduler, options: options) { seal in
            try ActuatorSet(seal: seal, backends: backends, clock: clock) { fault in
                faults.list.withLock { $0.append(fault) }
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
                guard broker.isConnected && readingsFlow.load(ordering: .relaxed) else { return }
                for handle in handlers { handle(MQTTMessage(topic: topic, payload: payload, arrival: at)) }
            }
            scheduler.advance(to: Instant(nanoseconds: t))
            if t % 1_000_000_000 == 0 { truth.withLock { [rig] in $0.append((t, rig.snapshot().temperature)) } }
            if t % 10_000_000_000 == 0 { audit.withLock { [runtime] in $0 += runtime.audit.drain() } }
        }
    }

    /// Runs in 100 ms steps until `condition` holds (true) or `limit` ns of simulated time pass.
    func run(for limit: Int64, until condition: () -> Bool) -> Bool {
        let end = rig.time + limit
        while rig.time < end {
            if condition() { return true }
            run(until: rig.time + 100_000_000)
        }
        return condition()
    }

    /// What an operator's MQTT client would publish, delivered through the broker (if it is up).
    /// `arrival`: when the MQTT thread took it (default now); an earlier one is a message that
    /// waited in the queue before its dispatch.
    func publish(_ topic: String, _ text: String, qos: Int = 1, retained: Bool = false, arrival: Int64? = nil) {
        guard broker.isConnected else { return }
        for handle in handlers {
            handle(MQTTMessage(topic: topic, payload: Array(text.utf8), qos: qos, retained: retained, arrival: arrival ?? rig.time))
        }
    }

    var status: RuntimeStatus { runtime.status }
    var heaterOn: Bool { rig.snapshot().heaterOn }
    /// The audit so far (drained into `audit`).
    var records: [AuditRecord] { audit.withLock { [runtime] in $0 += runtime.audit.drain(); return $0 } }
}

@Suite("Configured rig: examples/iot-rig-sim.yaml in lockstep with the simulated rig")
struct ConfiguredRigTests {
    static let stop = "robotd/iot-rig-sim/estop"
    static let reset = "robotd/iot-rig-sim/estop/reset/operator"

    /// The example as a two-point thermostat (heater on below 34.5 °C, off above 35.5 °C; the fan
    /// from 36.5 °C to full at 39 °C): a relay that cycles, so the guard's discrete limits act.
    static func hysteresis(_ yaml: inout String) {
        yaml = yaml.replacingOccurrences(of: "mode: pid", with: "mode: hysteresis")
            .replacingOccurrences(of: "band: 1.0", with: "band: 0.5")
    }

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

    /// A two-point thermostat for an hour: it really cycles, yet the heater never switches faster
    /// than its minimum on/off times (10 s) or 6 times a minute, whatever the thermostat asks; the
    /// guard refuses the early switches and confirms the held state instead.
    @Test func when_cycling_the_heater_for_an_hour_expect_the_setpoint_held_and_never_a_switch_faster_than_its_limits() throws {
        let loop = try ConfiguredRigLoop(try Examples.configuration("iot-rig-sim.yaml", edit: Self.hysteresis))
        loop.run(until: 3_600_000_000_000)
        let setpoint = 35.0
        #expect(abs(loop.rig.snapshot().temperature - setpoint) < 3)
        // The first report is the rig's power-up state; the switches follow.
        let changes = Array(loop.heaterSwitches.withLock { $0 }.filter { $0.1 == "on" || $0.1 == "off" }.dropFirst())
        #expect(changes.count > 20, "\(changes.count) switches")  // it really cycles
        // Minimum on and off time: 10 s between any two changes.
        let gaps = zip(changes.dropFirst(), changes).map { Double($0.0 - $1.0) / 1e9 }
        #expect(gaps.allSatisfy { $0 >= 10 - 1e-9 }, "shortest gap \(gaps.min() ?? .nan) s")
        // No more than 6 changes in any 60 s window.
        for (i, change) in changes.enumerated() {
            #expect(changes[i...].prefix { $0.0 - change.0 < 60_000_000_000 }.count <= 6)
        }
        // Over the last half hour the temperature stayed near the setpoint: the two-point band plus
        // the overshoot the 10 s minimum on-time costs (≈0.26 °C/s × 10 s at 35 °C).
        let late = loop.truth.withLock { $0 }.filter { $0.t > 1_800_000_000_000 }.map(\.celsius)
        #expect(late.count == 1800)
        #expect((late.min() ?? 0) > setpoint - 1.5 && (late.max() ?? 99) < setpoint + 3, "range \(late.min() ?? .nan)…\(late.max() ?? .nan)")
        let status = loop.status
        #expect(status.verdicts.rejected > 0 && status.discreteRefreshes > 0)  // the guard did refuse early switches
        #expect(loop.rig.snapshot().counters.commandsIgnored == 0)
        #expect(!status.latched)
    }

    /// The reading stops arriving while heating: the heater is on until the reading is older than
    /// its maximum age (5 s), then off within a tick, and the guard latches `stale-sensor`.
    @Test func when_the_temperature_reading_goes_stale_expect_the_heater_off_within_max_age_plus_a_tick() throws {
        let loop = try ConfiguredRigLoop(try Examples.configuration("iot-rig-sim.yaml"))
        loop.run(until: 20_000_000_000)  // heating up from 20 °C: the heater is on
        #expect(loop.heaterOn)
        loop.readingsFlow.store(false, ordering: .relaxed)
        let silent = loop.rig.time
        loop.run(until: silent + 4_000_000_000)
        #expect(loop.heaterOn)  // still within the 5 s maximum age
        loop.run(until: silent + 7_000_000_000)
        #expect(!loop.heaterOn)  // max age 5 s + one 1 s thermostat tick (+ the last reading's age)
        #expect(loop.status.latched && loop.status.latchCause == .staleSensor)
        #expect(loop.status.sensors[0].isNaN)  // unknown, not the last value
        #expect(loop.records.contains { $0.fault == .staleSensor })
    }

    // MARK: the rig's protections (docs/safety.md, "The IoT rig")

    @Test func when_a_remote_stop_arrives_expect_the_latch_and_the_heater_off_until_a_reset_releases_it() throws {
        let loop = try ConfiguredRigLoop(try Examples.configuration("iot-rig-sim.yaml"))
        loop.run(until: 20_000_000_000)
        #expect(loop.heaterOn)
        loop.publish(Self.stop, "stop")
        loop.run(until: loop.rig.time + 200_000_000)
        #expect(!loop.heaterOn)
        var status = loop.status
        #expect(status.latched && status.latchCause == .remoteStop && status.remoteStops == 1)
        #expect(status.causes.isEmpty)  // a message, not a level: only the latch holds it
        loop.run(until: loop.rig.time + 3_000_000_000)
        #expect(!loop.heaterOn && loop.status.verdicts.stopped >= 4)  // the thermostat still wants heat
        #expect(loop.status.wanted[0] == 1 && loop.status.approved[0] == 0)
        // The stop message is the only cause: the reset releases.
        loop.publish(Self.reset, "reset \(loop.status.latchSequence)")
        loop.run(until: loop.rig.time + 200_000_000)
        status = loop.status
        #expect(!status.latched && status.resets == 1 && status.refusedResets == 0)
        // Fresh commands after the reset; the heater waits out its minimum off time (10 s).
        #expect(loop.run(for: 12_000_000_000) { loop.heaterOn })
        #expect(loop.rig.snapshot().counters.relayTimeouts == 0)
    }

    /// Stops are dispatched before resets (critical vs normal); a reset that arrived no later than
    /// the stop must not release it.
    @Test func when_a_reset_arrives_before_a_stop_but_is_dispatched_after_it_expect_the_stop_to_hold() throws {
        let loop = try ConfiguredRigLoop(try Examples.configuration("iot-rig-sim.yaml"))
        loop.run(until: 20_000_000_000)
        loop.publish(Self.reset, "reset \(loop.status.latchSequence)")
        loop.publish(Self.stop, "stop")  // same arrival instant, queued together
        loop.run(until: loop.rig.time + 500_000_000)
        let status = loop.status
        #expect(status.latched && status.latchCause == .remoteStop)
        #expect(status.staleResetsIgnored == 1 && status.resets == 0)
        #expect(!loop.heaterOn)
    }

    /// What a broker replays at subscribe is stale history, not an operator's action now: retained
    /// stops and resets are ignored (counted); a reset that does not say so too; any live message
    /// on the stop topic latches.
    @Test func when_stop_and_reset_messages_are_retained_expect_them_ignored() throws {
        let loop = try ConfiguredRigLoop(try Examples.configuration("iot-rig-sim.yaml"))
        loop.publish(Self.stop, "stop", retained: true)  // at connect
        loop.run(until: 20_000_000_000)
        #expect(!loop.status.latched && loop.heaterOn)
        loop.publish(Self.stop, "stop", retained: true)
        loop.run(until: loop.rig.time + 1_000_000_000)
        #expect(!loop.status.latched && loop.heaterOn)
        loop.publish(Self.reset, "maybe")
        loop.run(until: loop.rig.time + 1_000_000_000)
        #expect(!loop.status.latched)
        loop.publish(Self.stop, "STOP\n")
        loop.run(until: loop.rig.time + 200_000_000)
        #expect(loop.status.latched && loop.status.latchCause == .remoteStop && loop.status.remoteStops == 1 && !loop.heaterOn)
        loop.publish(Self.reset, "reset", retained: true)
        loop.run(until: loop.rig.time + 1_000_000_000)
        #expect(loop.status.latched && loop.status.resets == 0 && loop.status.refusedResets == 0)
        #expect(loop.runtime.remoteStopCounters.retainedIgnored.load(ordering: .relaxed) == 3)
        #expect(loop.runtime.remoteStopCounters.unrecognised.load(ordering: .relaxed) == 1)
    }

    /// A bad setpoint (80 °C, above what the chamber may reach; the thermostat alone would heat to
    /// the rig's 70 °C equilibrium): the over-temperature interlock at 60 °C locks the heater off —
    /// not a latch —, resets are refused while the reading is beyond the limit, the heater stays
    /// locked once it has cooled until a reset, and after it the chamber is locked again at the
    /// limit. It never goes beyond it by more than the sensor's noise and one sample's heating.
    @Test func when_the_chamber_passes_60_c_expect_the_heater_locked_whatever_the_setpoint_and_resets_refused_until_it_cools() throws {
        let loop = try ConfiguredRigLoop(try Examples.configuration("iot-rig-sim.yaml") {
            $0 = $0.replacingOccurrences(of: "setpoint: 35.0", with: "setpoint: 80.0")
        })
        #expect(loop.run(for: 600_000_000_000) { loop.status.causes.contains(.valueInterlock) })
        var status = loop.status
        #expect(!loop.heaterOn && status.wanted[0] == 1 && status.approved[0] == 0 && !status.latched)
        // It did get there: the interlock, not a weak heater, held it.
        #expect((loop.truth.withLock { $0 }.map(\.celsius).max() ?? 0) > 59)
        // Refused while the reading is beyond the limit.
        loop.publish(Self.reset, "reset \(loop.status.latchSequence)")
        loop.run(until: loop.rig.time + 100_000_000)
        status = loop.status
        #expect(status.refusedResets == 1 && status.lastRefusal.contains(.valueInterlock) && status.resets == 0)
        #expect(loop.records.contains { $0.kind == .resetRefused && $0.causes.contains(.valueInterlock) })
        #expect(loop.records.contains { $0.fault == .valueInterlock })
        // Locked even once it has cooled, until a reset.
        loop.run(until: loop.rig.time + 10_000_000_000)
        status = loop.status
        #expect(!status.causes.contains(.valueInterlock) && !loop.heaterOn && status.wanted[0] == 1)
        loop.publish(Self.reset, "reset \(loop.status.latchSequence)")
        loop.run(until: loop.rig.time + 100_000_000)
        #expect(loop.status.resets == 1)
        #expect(loop.run(for: 5_000_000_000) { loop.heaterOn })
        // It heats again and is locked again at the limit.
        #expect(loop.run(for: 120_000_000_000) { loop.status.causes.contains(.valueInterlock) })
        #expect(!loop.heaterOn)
        // And stays locked: no reset, the chamber only cools.
        loop.run(until: loop.rig.time + 600_000_000_000)
        #expect(!loop.heaterOn && loop.status.resets == 1)
        let truth = loop.truth.withLock { $0 }.map(\.celsius)
        #expect((truth.max() ?? 99) < 60.5, "max \(truth.max() ?? .nan)")
    }

    /// The thermostat goes quiet (its task runs, sends nothing): the guard's command watchdog (3 s)
    /// takes the heater to its safe state — the channel alone, no latch —, before the relay's own
    /// time-out; when the thermostat speaks again, the heater comes back.
    @Test func when_the_thermostat_goes_quiet_expect_the_heater_watchdog_to_switch_it_off() throws {
        let silence = PolicySilence()
        var options = RobotRuntime.Options()
        options.policySilence = silence
        let loop = try ConfiguredRigLoop(try Examples.configuration("iot-rig-sim.yaml"), options: options)
        loop.run(until: 20_000_000_000)
        #expect(loop.heaterOn)
        silence.set(true)
        let quiet = loop.rig.time
        loop.run(until: quiet + 2_000_000_000)
        #expect(loop.heaterOn)  // the last command is under 3 s old
        // 3 s after the last command (at most 1 s before the silence) plus one 100 ms guard tick.
        #expect(loop.run(for: 2_200_000_000) { !loop.heaterOn })
        #expect(loop.records.contains { $0.kind == .watchdog && $0.channel == 0 })
        #expect(!loop.status.latched)  // the channel alone goes safe
        #expect(loop.rig.snapshot().counters.relayTimeouts == 0)  // the guard acted, not the relay
        silence.set(false)
        #expect(loop.run(for: 12_000_000_000) { loop.heaterOn })
    }

    /// The broker goes away while heating: robotd latches at once (the link is a level) but its
    /// "off" cannot get through; the relays switch off by their own time-out (the rig's, 10 s); the
    /// back end is inactive. When the broker is back, the back end is reactivated in its safe state,
    /// the causes clear, a reset is accepted, the heater comes back and regulation resumes.
    @Test func when_the_broker_restarts_expect_relays_off_by_their_own_timeout_then_recovery_after_a_reset() throws {
        let loop = try ConfiguredRigLoop(try Examples.configuration("iot-rig-sim.yaml"))
        loop.run(until: 20_000_000_000)
        #expect(loop.heaterOn)
        loop.broker.up.store(false, ordering: .relaxed)
        let gone = loop.rig.time
        loop.run(until: gone + 500_000_000)
        var status = loop.status
        #expect(status.latched && status.causes.contains(.connectionLost) && !status.linksUp)
        #expect(loop.heaterOn)  // robotd's "off" cannot get through
        loop.run(until: gone + 8_000_000_000)
        #expect(loop.heaterOn)
        // The relay's own 10 s time-out from the last command that reached it (≤ 1 s before).
        #expect(loop.run(for: 4_000_000_000) { !loop.heaterOn })
        let off = loop.rig.snapshot()
        #expect(off.fanDuty == 0 && off.counters.relayTimeouts == 1)
        #expect(loop.runtime.actuators.state(of: "rig_relays") == .inactive && !loop.faults.list.withLock { $0 }.isEmpty)
        // The broker is back: as the daemon does on the client's connect, the back end comes back in
        // its safe state.
        loop.broker.up.store(true, ordering: .relaxed)
        loop.runtime.requestReactivation(of: "rig_relays", at: Instant(nanoseconds: loop.rig.time))
        #expect(loop.run(for: 3_000_000_000) { loop.status.causes.isEmpty })  // link up, reading fresh
        status = loop.status
        #expect(status.reactivations == 1 && status.latched && status.linksUp && !loop.heaterOn)
        loop.publish(Self.reset, "reset \(loop.status.latchSequence)")
        #expect(loop.run(for: 3_000_000_000) { loop.heaterOn })
        #expect(loop.status.resets == 1)
        loop.run(until: 900_000_000_000)
        #expect(!loop.status.latched && loop.status.resets == 1, "causes \(loop.status.causes)")
        #expect(abs(loop.rig.snapshot().temperature - 35) < 1)
    }

    /// A higher-priority task eats 150 ms at every thermostat release: past its 100 ms deadline,
    /// three times in a row is a deadline fault — a latched stop and a level until the thermostat
    /// is on time again; then a reset releases.
    @Test func when_the_thermostat_keeps_missing_its_deadline_expect_a_deadline_fault_and_a_stop_until_a_reset() throws {
        let loop = try ConfiguredRigLoop(try Examples.configuration("iot-rig-sim.yaml"))
        let clock = loop.clock
        let hogging = Atomic<Bool>(false)
        // Runs just before each thermostat release (higher priority, same grid).
        loop.scheduler.addPeriodic("hog", PeriodicSpec(period: .seconds(1), priority: .critical)) { _ in
            if hogging.load(ordering: .relaxed) { clock.advance(by: .milliseconds(150)) }
        }
        loop.run(until: 20_000_000_000)
        #expect(loop.heaterOn && loop.status.deadlineFaults == 0)
        hogging.store(true, ordering: .relaxed)
        #expect(loop.run(for: 6_000_000_000) { loop.status.deadlineFaults >= 1 })
        loop.run(until: loop.rig.time + 200_000_000)
        #expect(loop.status.latched && loop.status.latchCause == .deadlineFault && !loop.heaterOn)
        #expect(loop.status.causes.contains(.deadlineFault))
        #expect((loop.scheduler.snapshot().task(named: "thermostat")?.misses ?? 0) >= 3)
        hogging.store(false, ordering: .relaxed)
        // An on-time run breaks the streak; then a reset releases.
        #expect(loop.run(for: 3_000_000_000) { loop.status.causes.isEmpty })
        loop.publish(Self.reset, "reset \(loop.status.latchSequence)")
        loop.run(until: loop.rig.time + 200_000_000)
        #expect(!loop.status.latched && loop.status.resets == 1)
    }
}

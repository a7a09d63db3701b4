import Actuators
import Foundation
import RTScheduler
import RobotSim
import SafetyGuard
import Synchronization
import TestSupport
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

final class FaultLog: Sendable {
    let list = Mutex<[ActuatorSet.Fault]>([])
}

/// The IoT rig's control path on virtual time: the simulated rig's MQTT readings → MQTTSensorInput
/// → scheduler → thermostat → guard (heater minimum on/off times, switch rate, stale reading,
/// watchdogs, chamber interlock, remote stop) → MQTTBackend → the rig's MQTT command parser.
final class RigLoop: Sendable {
    let clock = VirtualClock()
    let scheduler: Scheduler
    let rig: RigSimulation
    let runtime: RigRuntime
    let actuators: ActuatorSet
    let broker: LockstepBroker
    /// Heater state changes the rig published (retained `heater/state`), with their instants.
    let heaterChanges = Mutex<[(Int64, String)]>([])
    /// While false, the rig's readings do not reach robotd (a sensor that stopped publishing).
    let readingsFlow = Atomic<Bool>(true)
    /// The rig's true temperature once per simulated second.
    let truth = Mutex<[(Int64, Double)]>([])
    /// Actuator faults the set reported (as the daemon would hand them to the runtime).
    let faults = FaultLog()

    init(configuration: RigRuntime.Configuration = RigRuntime.Configuration(),
         rigConfig: RigSimulationConfig = RigSimulationConfig()) throws {
        let rig = RigSimulation(config: rigConfig)
        self.rig = rig
        let broker = LockstepBroker(rig)
        self.broker = broker
        let backend = MQTTBackend(name: "rig", routes: [
            .init(channel: ChannelID(index: 0), name: "heater", topic: "sim/rig/heater/set", stateNames: ["off", "on"],
                  safeValue: .discrete(0), qos: 0),
            .init(channel: ChannelID(index: 1), name: "fan", topic: "sim/rig/fan/set", safeValue: .continuous(0), qos: 0),
        ], client: broker)
        scheduler = Scheduler(clock: clock)
        let clock = self.clock
        let holder = Mutex<RigRuntime?>(nil)
        let faults = self.faults
        runtime = try RigRuntime(configuration: configuration, scheduler: scheduler, link: { broker.isConnected }) { seal in
            try ActuatorSet(seal: seal, backends: [backend], clock: clock) { fault in
                faults.list.withLock { $0.append(fault) }
                // Inline: reported from inside the control path; the runtime posts it (no lock taken).
                _ = holder.withLock { $0 }?.report(fault.error.code == .disconnected ? .connectionLost : .actuatorFailure,
                                                   at: clock.now())
            }
        }
        holder.withLock { [runtime] in $0 = runtime }
        actuators = runtime.actuators
        actuators.start()
    }

    func run(until end: Int64) {
        var t = rig.time
        while t < end {
            t += 100_000_000
            rig.advance(to: t) { topic, payload, _, at in
                if topic == "sim/rig/heater/state" { heaterChanges.withLock { $0.append((at, String(decoding: payload, as: UTF8.self))) } }
                if readingsFlow.load(ordering: .relaxed) && broker.isConnected {
                    runtime.handle(MQTTMessage(topic: topic, payload: payload, arrival: at))
                }
            }
            scheduler.advance(to: Instant(nanoseconds: t))
            if t % 1_000_000_000 == 0 { truth.withLock { [rig] in $0.append((t, rig.snapshot().temperature)) } }
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
    func publish(_ topic: String, _ text: String, retained: Bool = false) {
        guard broker.isConnected else { return }
        runtime.handle(MQTTMessage(topic: topic, payload: Array(text.utf8), qos: 1, retained: retained, arrival: rig.time))
    }

    var heaterOn: Bool { rig.snapshot().heaterOn }
}

@Suite("Lockstep IoT rig: MQTT readings → thermostat → guard → simulated heater and fan")
struct RigLoopTests {
    @Test func when_regulating_for_an_hour_expect_the_setpoint_held_and_the_heater_never_switched_faster_than_its_limits() throws {
        let loop = try RigLoop()
        loop.run(until: 3_600_000_000_000)
        let setpoint = loop.runtime.configuration.thermostat.setpoint
        let rig = loop.rig.snapshot()
        #expect(abs(rig.temperature - setpoint) < 3)
        // The first report is the rig's power-up state; the switches follow.
        let changes = Array(loop.heaterChanges.withLock { $0 }.filter { $0.1 == "on" || $0.1 == "off" }.dropFirst())
        #expect(changes.count > 20)  // it really cycles
        // Minimum on and off time: 10 s between any two changes, whatever the thermostat asked.
        let gaps = zip(changes.dropFirst(), changes).map { Double($0.0 - $1.0) / 1e9 }
        #expect(gaps.allSatisfy { $0 >= 10 - 1e-9 })
        // No more than 6 changes in any 60 s window.
        for (i, change) in changes.enumerated() {
            #expect(changes[i...].prefix { $0.0 - change.0 < 60_000_000_000 }.count <= 6)
        }
        // Over the last half hour the temperature stayed near the setpoint: the two-point band plus
        // the overshoot the 10 s minimum on-time costs (≈0.26 °C/s × 10 s at 35 °C).
        let late = loop.truth.withLock { $0 }.filter { $0.0 > 1_800_000_000_000 }.map(\.1)
        #expect(late.count == 1800)
        #expect((late.min() ?? 0) > setpoint - 1.5 && (late.max() ?? 99) < setpoint + 3)
        let status = loop.runtime.status
        #expect(status.verdicts.rejected > 0)  // the guard did refuse early switches
        #expect(loop.rig.snapshot().counters.commandsIgnored == 0)
        #expect(!status.latched)
    }

    @Test func when_the_temperature_reading_goes_stale_expect_the_heater_off_within_max_age_plus_a_tick() throws {
        let loop = try RigLoop()
        loop.run(until: 20_000_000_000)  // heating up from 20 °C: the heater is on
        #expect(loop.rig.snapshot().heaterOn)
        loop.readingsFlow.store(false, ordering: .relaxed)
        let silent = loop.rig.time
        loop.run(until: silent + 4_000_000_000)
        #expect(loop.rig.snapshot().heaterOn)  // still within the 5 s maximum age
        loop.run(until: silent + 7_000_000_000)
        #expect(!loop.rig.snapshot().heaterOn)  // max age 5 s + one 1 s thermostat tick (+ the last reading's age)
        #expect(loop.runtime.status.latched)
        #expect(loop.runtime.audit.drain().contains { $0.fault == .staleSensor })
    }

    // MARK: the rig's protections (docs/safety.md, "The IoT rig")

    static let stop = "robotd/rig/estop"
    static let reset = "robotd/rig/estop/reset"

    @Test func when_a_remote_stop_arrives_expect_the_latch_and_the_heater_off_until_a_reset_releases_it() throws {
        let loop = try RigLoop()
        loop.run(until: 20_000_000_000)
        #expect(loop.heaterOn)
        loop.publish(Self.stop, "stop")
        loop.run(until: loop.rig.time + 200_000_000)
        #expect(!loop.heaterOn)
        var status = loop.runtime.status
        #expect(status.latched && status.latchCause == .remoteStop && status.remoteStops == 1)
        #expect(status.causes.isEmpty)  // a message, not a level: only the latch holds it
        loop.run(until: loop.rig.time + 3_000_000_000)
        #expect(!loop.heaterOn && loop.runtime.status.verdicts.stopped >= 4)  // the thermostat still wants heat
        // The stop message is the only cause: the reset releases.
        loop.publish(Self.reset, "reset")
        loop.run(until: loop.rig.time + 200_000_000)
        status = loop.runtime.status
        #expect(!status.latched && status.resets == 1 && status.refusedResets == 0)
        // Fresh commands after the reset; the heater waits out its minimum off time (10 s).
        #expect(loop.run(for: 12_000_000_000) { loop.heaterOn })
        #expect(loop.rig.snapshot().counters.relayTimeouts == 0)
    }

    /// Found in review: stops are dispatched before resets (critical vs normal); a reset that
    /// arrived no later than the stop must not release it.
    @Test func when_a_reset_arrives_before_a_stop_but_is_dispatched_after_it_expect_the_stop_to_hold() throws {
        let loop = try RigLoop()
        loop.run(until: 20_000_000_000)
        loop.publish(Self.reset, "reset")
        loop.publish(Self.stop, "stop")  // same arrival instant, queued together
        loop.run(until: loop.rig.time + 500_000_000)
        let status = loop.runtime.status
        #expect(status.latched && status.latchCause == .remoteStop)
        #expect(status.staleResetsIgnored == 1 && status.resets == 0)
    }

    @Test func when_stop_and_reset_messages_are_retained_expect_them_ignored() throws {
        let loop = try RigLoop()
        loop.run(until: 20_000_000_000)
        // What a broker replays at subscribe: stale history, not an operator's action now.
        loop.publish(Self.stop, "stop", retained: true)
        loop.run(until: loop.rig.time + 1_000_000_000)
        #expect(!loop.runtime.status.latched && loop.heaterOn)
        loop.publish(Self.stop, "maybe")
        loop.run(until: loop.rig.time + 1_000_000_000)
        #expect(!loop.runtime.status.latched)
        loop.publish(Self.stop, "STOP\n")
        loop.run(until: loop.rig.time + 200_000_000)
        #expect(loop.runtime.status.latched && !loop.heaterOn)
        loop.publish(Self.reset, "reset", retained: true)
        loop.run(until: loop.rig.time + 1_000_000_000)
        #expect(loop.runtime.status.latched && loop.runtime.status.resets == 0)
        #expect(loop.runtime.remoteRetainedIgnored.load(ordering: .relaxed) == 2)
        #expect(loop.runtime.remoteUnrecognised.load(ordering: .relaxed) == 1)
    }

    @Test func when_the_chamber_passes_60_c_expect_the_heater_locked_whatever_the_setpoint_and_resets_refused_until_it_cools() throws {
        var configuration = RigRuntime.Configuration()
        configuration.thermostat.setpoint = 80  // the thermostat alone would heat to the rig's 70 °C equilibrium
        let loop = try RigLoop(configuration: configuration)
        #expect(loop.run(for: 600_000_000_000) { loop.runtime.status.causes.contains(.valueInterlock) })
        var status = loop.runtime.status
        #expect(!loop.heaterOn && status.wantedHeater == 1 && status.approvedHeater == 0 && !status.latched)
        // Refused while the reading is beyond the limit.
        loop.publish(Self.reset, "reset")
        loop.run(until: loop.rig.time + 100_000_000)
        status = loop.runtime.status
        #expect(status.refusedResets == 1 && status.lastRefusal.contains(.valueInterlock) && status.resets == 0)
        #expect(loop.runtime.audit.drain().contains { $0.kind == .resetRefused && $0.causes.contains(.valueInterlock) })
        // Locked even once it has cooled, until a reset.
        loop.run(until: loop.rig.time + 10_000_000_000)
        status = loop.runtime.status
        #expect(!status.causes.contains(.valueInterlock) && !loop.heaterOn && status.wantedHeater == 1)
        loop.publish(Self.reset, "reset")
        loop.run(until: loop.rig.time + 100_000_000)
        #expect(loop.runtime.status.resets == 1)
        #expect(loop.run(for: 5_000_000_000) { loop.heaterOn })
        // It heats again and is locked again at the limit: never much beyond it.
        #expect(loop.run(for: 120_000_000_000) { loop.runtime.status.causes.contains(.valueInterlock) })
        #expect(!loop.heaterOn)
        #expect((loop.truth.withLock { $0 }.map(\.1).max() ?? 99) < 61)
    }

    @Test func when_the_thermostat_goes_quiet_expect_the_heater_watchdog_to_switch_it_off() throws {
        let silence = PolicySilence()
        var configuration = RigRuntime.Configuration()
        configuration.thermostatSilence = silence
        let loop = try RigLoop(configuration: configuration)
        loop.run(until: 20_000_000_000)
        #expect(loop.heaterOn)
        silence.set(true)
        let quiet = loop.rig.time
        loop.run(until: quiet + 2_000_000_000)
        #expect(loop.heaterOn)  // the last command is under 3 s old
        // 3 s after the last command (at most 1 s before the silence) plus one 100 ms guard tick.
        #expect(loop.run(for: 2_200_000_000) { !loop.heaterOn })
        #expect(loop.runtime.audit.drain().contains { $0.kind == .watchdog && $0.channel == 0 })
        #expect(!loop.runtime.status.latched)  // the channel alone goes safe
        #expect(loop.rig.snapshot().counters.relayTimeouts == 0)  // the guard acted, not the relay
        silence.set(false)
        #expect(loop.run(for: 12_000_000_000) { loop.heaterOn })
    }

    @Test func when_the_broker_goes_away_expect_robotd_latched_and_the_relay_off_by_its_own_timeout_then_back_after_a_reset() throws {
        let loop = try RigLoop()
        loop.run(until: 20_000_000_000)
        #expect(loop.heaterOn)
        loop.broker.up.store(false, ordering: .relaxed)
        let gone = loop.rig.time
        loop.run(until: gone + 500_000_000)
        var status = loop.runtime.status
        #expect(status.latched && status.causes.contains(.connectionLost) && !status.linkUp)
        #expect(loop.heaterOn)  // robotd's "off" cannot get through
        loop.run(until: gone + 8_000_000_000)
        #expect(loop.heaterOn)
        // The relay's own 10 s time-out from the last command that reached it (≤ 1 s before).
        #expect(loop.run(for: 4_000_000_000) { !loop.heaterOn })
        #expect(loop.rig.snapshot().counters.relayTimeouts == 1)
        #expect(loop.actuators.state(of: "rig") == .inactive && !loop.faults.list.withLock { $0 }.isEmpty)
        // The broker is back: the client's connect reactivates the back end in its safe state.
        loop.broker.up.store(true, ordering: .relaxed)
        loop.runtime.requestReactivation(of: "rig", at: Instant(nanoseconds: loop.rig.time))
        #expect(loop.run(for: 3_000_000_000) { loop.runtime.status.causes.isEmpty })  // link up, reading fresh
        status = loop.runtime.status
        #expect(status.reactivations == 1 && status.latched && !loop.heaterOn)
        loop.publish(Self.reset, "reset")
        #expect(loop.run(for: 3_000_000_000) { loop.heaterOn })
        #expect(loop.runtime.status.resets == 1)
    }

    @Test func when_the_thermostat_keeps_missing_its_deadline_expect_a_deadline_fault_and_a_stop_until_a_reset() throws {
        let loop = try RigLoop()
        let clock = loop.clock
        let hogging = Atomic<Bool>(false)
        // Runs just before each thermostat release (higher priority, same grid) and eats 150 ms:
        // past the thermostat's 100 ms deadline.
        loop.scheduler.addPeriodic("hog", PeriodicSpec(period: .seconds(1), priority: .critical)) { _ in
            if hogging.load(ordering: .relaxed) { clock.advance(by: .milliseconds(150)) }
        }
        loop.run(until: 20_000_000_000)
        #expect(loop.heaterOn && loop.runtime.status.deadlineFaults == 0)
        hogging.store(true, ordering: .relaxed)
        #expect(loop.run(for: 6_000_000_000) { loop.runtime.status.deadlineFaults >= 1 })
        loop.run(until: loop.rig.time + 200_000_000)
        #expect(loop.runtime.status.latched && !loop.heaterOn)
        #expect(loop.runtime.status.causes.contains(.deadlineFault))
        hogging.store(false, ordering: .relaxed)
        // An on-time run breaks the streak; then a reset releases.
        #expect(loop.run(for: 3_000_000_000) { loop.runtime.status.causes.isEmpty })
        loop.publish(Self.reset, "reset")
        loop.run(until: loop.rig.time + 200_000_000)
        #expect(!loop.runtime.status.latched)
    }
}

/// The same control path in real time against the simulated rig on a real Mosquitto broker:
/// readings through libmosquitto into MQTTSensorInput, commands out through MQTTBackend.
@Suite("IoT rig over a real broker", .serialized, .enabled(if: MosquittoBroker.isInstalled, "mosquitto is not installed"))
struct RigOverMQTTTests {
    @Test func when_the_rig_is_below_the_setpoint_expect_the_heater_switched_on_over_mqtt_and_off_on_safe_stop() throws {
        let broker = try MosquittoBroker()
        try broker.start()
        defer { broker.stop() }
        var simOptions = SimulatorRunner.Options()
        simOptions.broker = ("127.0.0.1", broker.port)
        simOptions.rig.sampleHz = 5
        let sim = try SimulatorRunner(options: simOptions)
        try sim.start()
        defer { sim.stop() }

        let scheduler = Scheduler(clock: MonotonicClock())
        let holder = Mutex<RigRuntime?>(nil)
        let client = try MQTTClient(options: MQTTOptions(port: broker.port, clientID: "robotd-rig-test")) { message in
            holder.withLock { $0 }?.handle(message)
        }
        let backend = MQTTBackend(name: "rig", routes: [
            .init(channel: ChannelID(index: 0), name: "heater", topic: "sim/rig/heater/set", stateNames: ["off", "on"], safeValue: .discrete(0)),
            .init(channel: ChannelID(index: 1), name: "fan", topic: "sim/rig/fan/set", safeValue: .continuous(0)),
        ], client: client)
        var configuration = RigRuntime.Configuration()
        configuration.thermostat.setpoint = 23  // the rig starts at 20 °C
        // Threaded, as in the daemon: formatting and publishing run on the back end's writer thread.
        let runtime = try RigRuntime(configuration: configuration, scheduler: scheduler) { seal in
            try ActuatorSet(seal: seal, backends: [backend], clock: scheduler.clock, mode: .threaded(.init()))
        }
        let actuators = runtime.actuators
        holder.withLock { $0 = runtime }
        try runtime.sensors.subscribe(on: client)
        try client.start()
        defer { client.stop() }
        #expect(waitUntil { client.counters.subscribed.load(ordering: .relaxed) >= 1 && sim.rigSubscriptions >= 2 })
        actuators.start()
        try scheduler.start()
        defer { scheduler.stop() }
        #expect(waitUntil(seconds: 15) { sim.rig?.snapshot().heaterOn == true })
        #expect(runtime.status.temperature < 23)
        actuators.safeStop(reason: "test")
        #expect(waitUntil(seconds: 10) { sim.rig?.snapshot().heaterOn == false })
        #expect(sim.rig?.snapshot().counters.commandsIgnored == 0)
    }

    @Test func when_the_broker_is_killed_while_heating_expect_a_latched_lost_link_the_relay_off_by_its_own_timeout_and_heat_after_a_reset() throws {
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

        let scheduler = Scheduler(clock: MonotonicClock())
        let clock = scheduler.clock
        let holder = Mutex<RigRuntime?>(nil)
        defer { holder.withLock { $0 = nil } }
        let client = try MQTTClient(options: MQTTOptions(port: broker.port, clientID: "robotd-rig-kill-test", reconnectMaxSeconds: 1),
                                    onEvent: { event in
            // As the demo does: the link is back → the back end comes back in its safe state.
            if event == .connected { holder.withLock { $0 }?.requestReactivation(of: "rig", at: clock.now()) }
        }) { message in holder.withLock { $0 }?.handle(message) }
        // QoS 0: nothing queued during the outage is replayed to the relay afterwards.
        let backend = MQTTBackend(name: "rig", routes: [
            .init(channel: ChannelID(index: 0), name: "heater", topic: "sim/rig/heater/set", stateNames: ["off", "on"],
                  safeValue: .discrete(0), qos: 0),
            .init(channel: ChannelID(index: 1), name: "fan", topic: "sim/rig/fan/set", safeValue: .continuous(0), qos: 0),
        ], client: client)
        var configuration = RigRuntime.Configuration()
        configuration.thermostat.setpoint = 30
        let runtime = try RigRuntime(configuration: configuration, scheduler: scheduler, link: { client.isConnected }) { seal in
            try ActuatorSet(seal: seal, backends: [backend], clock: clock, mode: .threaded(.init())) { fault in
                _ = holder.withLock { $0 }?.report(fault.error.code == .disconnected ? .connectionLost : .actuatorFailure, at: clock.now())
            }
        }
        holder.withLock { $0 = runtime }
        try runtime.subscribe(on: client)
        try client.start()
        defer { client.stop() }
        #expect(waitUntil { client.counters.subscribed.load(ordering: .relaxed) >= 3 && sim.rigSubscriptions >= 2 })
        runtime.actuators.start()
        try scheduler.start()
        defer {
            runtime.actuators.safeStop(reason: "test")
            scheduler.stop()
        }
        #expect(waitUntil(seconds: 15) { sim.rig?.snapshot().heaterOn == true })

        // The broker dies (SIGKILL by its PID): nothing robotd sends reaches the relay any more.
        let pid = try #require(broker.pid)
        kill(pid, SIGKILL)
        broker.stop()
        #expect(waitUntil(seconds: 5) { runtime.status.latched && runtime.status.causes.contains(.connectionLost) })
        #expect(runtime.status.latchCause == .connectionLost)
        #expect(waitUntil(seconds: 8) { sim.rig?.snapshot().heaterOn == false })
        #expect((sim.rig?.snapshot().counters.relayTimeouts ?? 0) >= 1)

        // The broker is back on the same port: both clients reconnect, the causes clear, and a
        // reset from the operator's console lets the heater come on again.
        let again = try MosquittoBroker(port: broker.port)
        try again.start()
        defer { again.stop() }
        #expect(waitUntil(seconds: 15) { client.isConnected && sim.isRigConnected && runtime.status.causes.isEmpty })
        #expect(runtime.status.latched && runtime.actuators.state(of: "rig") == .active)
        let console = try MQTTClient(options: MQTTOptions(port: broker.port, clientID: "robotd-rig-kill-test-console")) { _ in }
        try console.start()
        defer { console.stop() }
        #expect(waitUntil { console.isConnected })
        try console.publish(topic: configuration.remoteResetTopic, payload: Array("reset".utf8), qos: 1, retain: false)
        #expect(waitUntil(seconds: 5) { !runtime.status.latched })
        #expect(runtime.status.resets == 1)
        // After its minimum off time (10 s) from the stop.
        #expect(waitUntil(seconds: 20) { sim.rig?.snapshot().heaterOn == true })
    }
}

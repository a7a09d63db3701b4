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

/// The IoT rig's control path on virtual time: the simulated rig's MQTT readings → MQTTSensorInput
/// → scheduler → thermostat → guard (heater minimum on/off times, switch rate, stale reading) →
/// SimulatorBackend (the rig's MQTT command parser).
final class RigLoop: Sendable {
    let clock = VirtualClock()
    let scheduler: Scheduler
    let rig: RigSimulation
    let runtime: RigRuntime
    let actuators: ActuatorSet
    /// Heater state changes the rig published (retained `heater/state`), with their instants.
    let heaterChanges = Mutex<[(Int64, String)]>([])
    /// While false, the rig's readings do not reach robotd (a sensor that stopped publishing).
    let readingsFlow = Atomic<Bool>(true)
    /// The rig's true temperature once per simulated second.
    let truth = Mutex<[(Int64, Double)]>([])

    init() throws {
        rig = RigSimulation()
        let backend = SimulatorBackend(name: "rig", rig: rig, routes: [
            .init(channel: ChannelID(index: 0), name: "heater", topic: "sim/rig/heater/set", stateNames: ["off", "on"],
                  safeValue: .discrete(0)),
            .init(channel: ChannelID(index: 1), name: "fan", topic: "sim/rig/fan/set", safeValue: .continuous(0)),
        ])
        scheduler = Scheduler(clock: clock)
        let clock = self.clock
        runtime = try RigRuntime(scheduler: scheduler) { seal in try ActuatorSet(seal: seal, backends: [backend], clock: clock) }
        actuators = runtime.actuators
        actuators.start()
    }

    func run(until end: Int64) {
        var t = rig.time
        while t < end {
            t += 100_000_000
            rig.advance(to: t) { topic, payload, _, at in
                if topic == "sim/rig/heater/state" { heaterChanges.withLock { $0.append((at, String(decoding: payload, as: UTF8.self))) } }
                if readingsFlow.load(ordering: .relaxed) {
                    runtime.sensors.handle(MQTTMessage(topic: topic, payload: payload, arrival: at))
                }
            }
            scheduler.advance(to: Instant(nanoseconds: t))
            if t % 1_000_000_000 == 0 { truth.withLock { [rig] in $0.append((t, rig.snapshot().temperature)) } }
        }
    }
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
            holder.withLock { $0 }?.sensors.handle(message)
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
}

import Foundation
import Testing
import Transports
@testable import RobotSim

@Suite("Simulated IoT rig: thermal model and MQTT face")
struct RigSimulationTests {
    @Test func when_heated_expect_an_exponential_rise_toward_ambient_plus_power_over_conductance_and_drier_air() {
        var rig = ThermalRig()
        rig.heaterOn = true
        let humidityBefore = rig.relativeHumidity
        for _ in 0..<3600 { rig.step(dt: 1) }
        let p = rig.parameters
        let equilibrium = p.ambientCelsius + p.heaterWatts / p.wallConductance
        #expect(abs(rig.temperature - equilibrium) < 0.1)  // 3600 s ≫ τ = C/G ≈ 133 s
        #expect(rig.relativeHumidity < humidityBefore / 3)
        #expect(!rig.fuseBlown)

        var fanned = ThermalRig()
        fanned.heaterOn = true
        fanned.fanDuty = 1
        for _ in 0..<3600 { fanned.step(dt: 1) }
        #expect(abs(fanned.temperature - (p.ambientCelsius + p.heaterWatts / (p.wallConductance + p.fanConductance))) < 0.1)
    }

    @Test func when_overheated_expect_the_fuse_to_cut_the_heater_for_good() {
        var parameters = ThermalRigParameters()
        parameters.heaterWatts = 400
        var rig = ThermalRig(parameters: parameters)
        rig.heaterOn = true
        for _ in 0..<3600 { rig.step(dt: 1) }
        #expect(rig.fuseBlown && !rig.heating)
        #expect(rig.temperature < parameters.fuseCelsius + 1)
    }

    @Test func when_commands_arrive_expect_valid_ones_applied_and_the_rest_counted() {
        let sim = RigSimulation()
        sim.handle(topic: "sim/rig/heater/set", payload: Array("on".utf8))
        sim.handle(topic: "sim/rig/fan/set", payload: Array("0.25".utf8))
        sim.handle(topic: "sim/rig/fan/set", payload: Array("7".utf8))
        sim.handle(topic: "sim/rig/heater/set", payload: Array("maybe".utf8))
        sim.handle(topic: "sim/rig/other", payload: Array("1".utf8))
        let s = sim.snapshot()
        #expect(s.heaterOn && s.fanDuty == 0.25)
        #expect(s.counters.heaterCommands == 1 && s.counters.fanCommands == 1 && s.counters.commandsIgnored == 3)
    }

    @Test func when_advanced_expect_readings_once_per_sample_period_as_json_and_state_changes_retained() {
        let sim = RigSimulation()
        var messages: [(String, [UInt8], Bool)] = []
        sim.handle(topic: "sim/rig/heater/set", payload: Array("1".utf8))
        sim.advance(to: 10_000_000_000) { topic, payload, retain, _ in messages.append((topic, payload, retain)) }
        let temperatures = messages.filter { $0.0 == "sim/rig/temperature" }
        #expect(temperatures.count == 10)
        let values = temperatures.compactMap { try? MQTTPayload.number($0.1, fieldPath: "value").get() }
        #expect(values.count == 10 && values.last! > values.first! + 2)  // ≈0.37 °C/s at first
        #expect(messages.contains { $0.0 == "sim/rig/heater/state" && $0.1 == Array("on".utf8) && $0.2 })
        #expect(messages.filter { $0.0 == "sim/rig/humidity" }.count == 10)
    }
}

@Suite("Simulated IoT rig: the relays' own command time-out")
struct RigRelayTimeoutTests {
    @Test func when_no_command_comes_for_the_relay_timeout_expect_heater_and_fan_off_and_counted() {
        var config = RigSimulationConfig()
        config.relayTimeout = 3_000_000_000
        let sim = RigSimulation(config: config)
        sim.handle(topic: "sim/rig/heater/set", payload: Array("on".utf8))
        sim.handle(topic: "sim/rig/fan/set", payload: Array("0.5".utf8))
        sim.advance(to: 2_000_000_000) { _, _, _, _ in }
        // A command (even the same state) restarts the heater's timer; the fan gets none.
        sim.handle(topic: "sim/rig/heater/set", payload: Array("on".utf8))
        sim.advance(to: 3_000_000_000) { _, _, _, _ in }
        #expect(sim.snapshot().heaterOn && sim.snapshot().fanDuty == 0.5)
        sim.advance(to: 3_200_000_000) { _, _, _, _ in }
        #expect(sim.snapshot().heaterOn && sim.snapshot().fanDuty == 0)
        sim.advance(to: 5_200_000_000) { _, _, _, _ in }
        let s = sim.snapshot()
        #expect(!s.heaterOn && s.counters.relayTimeouts == 2)
        // Off already: nothing more to time out.
        sim.advance(to: 20_000_000_000) { _, _, _, _ in }
        #expect(sim.snapshot().counters.relayTimeouts == 2)
    }

    @Test func when_the_relay_timeout_is_off_expect_the_heater_to_stay_on() {
        var config = RigSimulationConfig()
        config.relayTimeout = nil
        let sim = RigSimulation(config: config)
        sim.handle(topic: "sim/rig/heater/set", payload: Array("1".utf8))
        sim.advance(to: 60_000_000_000) { _, _, _, _ in }
        #expect(sim.snapshot().heaterOn && sim.snapshot().counters.relayTimeouts == 0)
    }
}

import Foundation
import Synchronization
import Transports

public struct RigSimulationConfig: Sendable, Equatable {
    public var parameters = ThermalRigParameters()
    /// Topics live under this prefix: `<prefix>/temperature`, `<prefix>/heater/set`, …
    public var topicPrefix = "sim/rig"
    public var sampleHz = 1.0
    public var physicsStep: Int64 = 100_000_000
    public var seed: UInt64 = 7
    public var temperatureNoise = 0.05
    public var humidityNoise = 0.3
    /// The relays' own command time-out (ns), as real smart relays have: a heater or fan that has
    /// had no valid command for this long switches itself off, so a controller that went silent
    /// (crashed, broker gone) cannot leave the heater on. The controller must re-send its state
    /// well within it. nil: none.
    public var relayTimeout: Int64? = 10_000_000_000
    /// Faults on simulated time: the rig applies broker-stop and reports every kind active.
    public var faults: [SimulatorFault] = []
    public init() {}
}

/// The rig's MQTT face: what the rig's controller would publish and accept.
///
/// - publishes `<prefix>/temperature` `{"value": 21.3, "unit": "C", "time_ms": 5000}`,
///   `<prefix>/humidity` `{"value": 48.2, "unit": "%", …}`, and, retained, `<prefix>/heater/state`
///   `on|off|fuse-blown` and `<prefix>/fan/state` (duty) whenever they change;
/// - accepts `<prefix>/heater/set` (`on`/`off`/`1`/`0`) and `<prefix>/fan/set` (duty 0…1, bare
///   number). Anything else is counted as ignored. Each relay switches off on its own when it has
///   had no valid command for `relayTimeout` (counted in `relayTimeouts`).
public struct RigCounters: Sendable, Equatable, Codable {
    public var heaterCommands = 0
    public var fanCommands = 0
    public var commandsIgnored = 0
    public var samplesPublished = 0
    /// Times a relay switched its output off on its own command time-out (counted only when it
    /// was on: the time-out acted).
    public var relayTimeouts = 0
    /// Commands that arrived while the link was down (never applied).
    public var commandsLost = 0
    public init() {}
}

public struct RigSnapshot: Sendable, Equatable, Codable {
    public var time: Int64
    public var temperature: Double
    public var relativeHumidity: Double
    public var heaterOn: Bool
    public var fanDuty: Double
    public var fuseBlown: Bool
    public var counters: RigCounters
    /// False while `setLinkUp(false)` or a broker-stop fault holds the MQTT link down.
    public var linkUp: Bool
    public var activeFaults: [String]
}

/// The IoT rig in lockstep (virtual time), the same object the real-time runner drives from the
/// monotonic clock with a real MQTT client.
public final class RigSimulation: Sendable {
    public let config: RigSimulationConfig

    private struct Core: Sendable {
        var time: Int64 = 0
        var rig: ThermalRig
        var random: SimRandom
        var nextSample: Int64 = 0
        var counters = RigCounters()
        var lastHeaterState: String?
        var lastFanState: Double?
        /// Simulated time of the last valid command per relay (the time-out counts from it).
        var lastHeaterCommand: Int64 = 0
        var lastFanCommand: Int64 = 0
        var linkUp = true
    }

    private let core: Mutex<Core>

    public init(config: RigSimulationConfig = RigSimulationConfig()) {
        precondition(config.physicsStep > 0, "physics step must be positive")
        self.config = config
        let period = config.sampleHz > 0 ? Int64((1e9 / config.sampleHz).rounded()) : .max
        core = Mutex(Core(rig: ThermalRig(parameters: config.parameters), random: SimRandom(seed: config.seed),
                          nextSample: period))
    }

    public var time: Int64 { core.withLock { $0.time } }
    public var commandTopics: [String] { ["\(config.topicPrefix)/heater/set", "\(config.topicPrefix)/fan/set"] }

    /// Takes the rig's MQTT link down or up: while down it neither publishes nor receives.
    public func setLinkUp(_ up: Bool) { core.withLock { $0.linkUp = up } }

    private func linked(_ core: borrowing Core) -> Bool {
        core.linkUp && !ActiveFaults(config.faults, at: core.time).contains(.brokerStop)
    }

    /// A message to the rig (what the broker would deliver).
    public func handle(topic: String, payload: [UInt8]) {
        core.withLock { core in
            guard linked(core) else { core.counters.commandsLost += 1; return }
            let value = try? MQTTPayload.number(payload, fieldPath: nil).get()
            switch topic {
            case "\(config.topicPrefix)/heater/set" where value == 0 || value == 1:
                core.rig.heaterOn = value == 1
                core.lastHeaterCommand = core.time
                core.counters.heaterCommands += 1
            case "\(config.topicPrefix)/fan/set" where value.map { $0 >= 0 && $0 <= 1 } ?? false:
                core.rig.fanDuty = value ?? 0
                core.lastFanCommand = core.time
                core.counters.fanCommands += 1
            default:
                core.counters.commandsIgnored += 1
            }
        }
    }

    /// Steps the model to `target` and hands every message the rig publishes to `publish`
    /// (topic, payload, retain, instant). `publish` runs under the lock: no calls back in.
    public func advance(to target: Int64, publish: (String, [UInt8], Bool, Int64) -> Void) {
        core.withLock { core in
            let period = config.sampleHz > 0 ? Int64((1e9 / config.sampleHz).rounded()) : .max
            while core.time + config.physicsStep <= target {
                core.time += config.physicsStep
                if let timeout = config.relayTimeout {
                    if core.rig.heaterOn && core.time - core.lastHeaterCommand > timeout {
                        core.rig.heaterOn = false
                        core.counters.relayTimeouts += 1
                    }
                    if core.rig.fanDuty > 0 && core.time - core.lastFanCommand > timeout {
                        core.rig.fanDuty = 0
                        core.counters.relayTimeouts += 1
                    }
                }
                core.rig.step(dt: Double(config.physicsStep) / 1e9)
                guard linked(core) else {
                    // Readings due while down are lost; state changes go out once the link is back.
                    while core.time >= core.nextSample { core.nextSample += period }
                    continue
                }
                let heater = core.rig.fuseBlown ? "fuse-blown" : core.rig.heaterOn ? "on" : "off"
                if heater != core.lastHeaterState {
                    core.lastHeaterState = heater
                    publish("\(config.topicPrefix)/heater/state", Array(heater.utf8), true, core.time)
                }
                if core.rig.fanDuty != core.lastFanState {
                    core.lastFanState = core.rig.fanDuty
                    publish("\(config.topicPrefix)/fan/state", Array(String(core.rig.fanDuty).utf8), true, core.time)
                }
                if core.time >= core.nextSample {
                    core.nextSample += period
                    let t = core.rig.temperature + core.random.gaussian(config.temperatureNoise)
                    let h = min(100, max(0, core.rig.relativeHumidity + core.random.gaussian(config.humidityNoise)))
                    publish("\(config.topicPrefix)/temperature", Self.reading(t, unit: "C", time: core.time), false, core.time)
                    publish("\(config.topicPrefix)/humidity", Self.reading(h, unit: "%", time: core.time), false, core.time)
                    core.counters.samplesPublished += 1
                }
            }
        }
    }

    public func snapshot() -> RigSnapshot {
        core.withLock { core in
            RigSnapshot(time: core.time, temperature: core.rig.temperature, relativeHumidity: core.rig.relativeHumidity,
                        heaterOn: core.rig.heaterOn, fanDuty: core.rig.fanDuty, fuseBlown: core.rig.fuseBlown,
                        counters: core.counters, linkUp: linked(core),
                        activeFaults: ActiveFaults(config.faults, at: core.time).names)
        }
    }

    static func reading(_ value: Double, unit: String, time: Int64) -> [UInt8] {
        let rounded = (value * 100).rounded() / 100
        return Array("{\"value\":\(rounded),\"unit\":\"\(unit)\",\"time_ms\":\(time / 1_000_000)}".utf8)
    }
}

import Actuators
import RTScheduler
import SafetyGuard
import Transports

/// An IoT rig's control path: the temperature arrives over MQTT (a JSON field), a periodic
/// thermostat task proposes heater (discrete) and fan (duty) commands, the guard holds the heater
/// to its minimum on/off times and switch rate and turns it off when the temperature reading goes
/// stale, and approved commands go out through the actuators (MQTT, or the simulator in lockstep).
public final class RigRuntime: Sendable {
    public struct Configuration: Sendable {
        public var thermostat = Thermostat.Parameters()
        public var period: Duration = .seconds(1)
        public var temperatureTopic = "sim/rig/temperature"
        public var temperatureField: String? = "value"
        public var temperatureMaxAge: Duration = .seconds(5)
        public var heaterLimits = DiscreteLimits(allowedStates: [0, 1], minOnTime: .seconds(10), minOffTime: .seconds(10),
                                                 maxSwitchesPerMinute: 6)
        public init() {}

        public var guardConfiguration: GuardConfiguration {
            GuardConfiguration(
                channels: [
                    ChannelConfiguration(name: "heater", limits: .discrete(heaterLimits), isMotion: false),
                    ChannelConfiguration(name: "fan", limits: .continuous(.duty(min: 0, max: 1, maxRate: 0.5)), isMotion: false),
                ],
                sensors: [RequiredSensor(name: "temperature", maxAge: temperatureMaxAge, reaction: .stop(.zero))])
        }
    }

    public struct Status: Sendable, Equatable {
        public var temperature = Double.nan
        public var wantedHeater = 0
        public var wantedFan = 0.0
        public var verdicts = VerdictCounts()
        public var latched = false

        public static func == (a: Status, b: Status) -> Bool {
            a.temperature.bitPattern == b.temperature.bitPattern && a.wantedHeater == b.wantedHeater && a.wantedFan == b.wantedFan
                && a.verdicts == b.verdicts && a.latched == b.latched
        }
    }

    struct Control {
        var guardian: SafetyGuard
        var thermostat: Thermostat
        var status = Status()
    }

    public let configuration: Configuration
    /// Route the MQTT client's messages here (`handle`), or feed it in lockstep.
    public let sensors: MQTTSensorInput
    public let audit: AuditLog
    public let actuators: ActuatorSet
    private let shared: SharedState<Control>

    /// Channels: 0 heater (discrete 0/1), 1 fan (duty 0…1). `actuators` builds the set bound to this
    /// runtime's guard (it gets the guard's seal).
    public init(configuration: Configuration = Configuration(), scheduler: Scheduler,
                actuators makeActuators: (GuardSeal) throws -> ActuatorSet) throws {
        self.configuration = configuration
        let guardian = try SafetyGuard(configuration: configuration.guardConfiguration)
        let actuators = try makeActuators(guardian.seal)
        guard actuators.seal === guardian.seal else {
            throw ActuatorError(.unknownChannel, backend: "actuator set", detail: "not bound to this runtime's guard")
        }
        self.actuators = actuators
        audit = guardian.audit
        let shared = SharedState(Control(guardian: guardian, thermostat: Thermostat(parameters: configuration.thermostat)))
        self.shared = shared
        let write: @Sendable (ApprovedCommand) -> Void = { actuators.write($0) }
        let temperatureID = guardian.sensor(named: "temperature")
        let temperature = scheduler.addSource("temperature", queue: QueueSpec(capacity: 4, overflow: .keepLatestPerKey),
                                              subscription: Subscription(priority: .normal, relativeDeadline: .milliseconds(100))) { event in
            guard case .scalar(let value) = event.payload else { return }
            shared.withLock { c in
                c.status.temperature = value
                if let temperatureID { c.guardian.noteSensor(temperatureID, at: event.release) }
            }
        }
        sensors = MQTTSensorInput(routes: [.init(filter: configuration.temperatureTopic, fieldPath: configuration.temperatureField,
                                                 qos: 1, source: temperature)])
        let lifetime = configuration.period * 2
        let clock = scheduler.clock
        scheduler.addPeriodic("thermostat", PeriodicSpec(period: configuration.period, priority: .normal)) { event in
            shared.withLock { c in
                // Guard first: a stale reading stops the heater before the thermostat acts on it.
                c.guardian.tick(now: event.release, emit: write)
                let (heater, fan) = c.thermostat.step(temperature: c.status.temperature)
                c.status.wantedHeater = heater
                c.status.wantedFan = fan
                let now = clock.now()
                c.status.verdicts.route(c.guardian.check(Command(channel: ChannelID(index: 0), value: .discrete(heater), origin: .policy,
                                                                 issuedAt: event.release, validUntil: event.release + lifetime), now: now), to: write)
                c.status.verdicts.route(c.guardian.check(Command(channel: ChannelID(index: 1), value: .continuous(fan), origin: .policy,
                                                                 issuedAt: event.release, validUntil: event.release + lifetime), now: now), to: write)
                c.status.latched = c.guardian.latch.isLatched
            }
        }
    }

    public var status: Status { shared.withLock { $0.status } }
}

import Actuators
import RTScheduler
import SafetyGuard
import Synchronization
import Transports

/// An IoT rig's control path: the temperature arrives over MQTT (a JSON field), a periodic,
/// critical thermostat task proposes heater (discrete) and fan (duty) commands, the guard holds the
/// heater to its minimum on/off times and switch rate, and approved commands go out through the
/// actuators (MQTT, or the simulator in lockstep). The guard ticks on its own periodic task and
/// gets the same protections as the rover's (docs/safety.md, "The IoT rig"): command watchdogs,
/// deadline faults, a lost broker link as a level, actuator faults, the supervisor's stall path,
/// a remote stop and reset over MQTT, the chamber-temperature interlock on the heater.
public final class RigRuntime: Sendable {
    public struct Configuration: Sendable {
        public var thermostat = Thermostat.Parameters()
        /// The thermostat's period: it sends both channels every period (the relays' own
        /// time-outs and the guard's watchdogs expect a live controller, not only changes).
        public var period: Duration = .seconds(1)
        /// The thermostat's deadline after each release, and the misses in a row that make a
        /// deadline fault (a guard stop).
        public var thermostatDeadline: Duration = .milliseconds(100)
        public var criticalMisses = 3
        /// The guard's own tick: levels (the link, failed back ends), watchdogs, stop ramps.
        public var guardPeriod: Duration = .milliseconds(100)
        public var temperatureTopic = "sim/rig/temperature"
        public var temperatureField: String? = "value"
        public var temperatureMaxAge: Duration = .seconds(5)
        /// Readings outside this range (°C) are no sample: a broken probe, not a temperature.
        public var temperatureRange: ClosedRange<Double> = -40...150
        public var heaterLimits = DiscreteLimits(allowedStates: [0, 1], minOnTime: .seconds(10), minOffTime: .seconds(10),
                                                 maxSwitchesPerMinute: 6)
        /// No approved command on a channel for this long: the guard takes it to its safe value.
        public var commandWatchdog: Duration = .seconds(3)
        /// The chamber above this (°C) locks the heater off whatever the setpoint says, until a
        /// reset once it has cooled; nil: no interlock.
        public var heaterInterlockMax: Double? = 60
        /// MQTT topics of the remote stop (latching) and of the reset. Not authorised yet: anyone
        /// who may publish there can stop the rig or ask for a reset (the guard still refuses a
        /// reset while a cause persists); authorisation comes with the monitoring issue.
        public var remoteStopTopic = "robotd/rig/estop"
        public var remoteResetTopic = "robotd/rig/estop/reset"
        public var remoteStopCategory: StopCategory = .one
        /// The temperature has this long after the first guard tick to report; until then the
        /// heater is withheld, after it a silent sensor is a stop.
        public var startupTimeout: Duration = .seconds(10)
        /// Start latched (`power-on`): nothing is switched on until a deliberate reset.
        public var startLatched = false
        /// TEST HOOK: while set, the thermostat task sends nothing (a control path gone quiet).
        public var thermostatSilence: PolicySilence?
        public init() {}

        public var guardConfiguration: GuardConfiguration {
            var configuration = GuardConfiguration(
                channels: [
                    ChannelConfiguration(name: "heater", limits: .discrete(heaterLimits), watchdogTimeout: commandWatchdog,
                                         isMotion: false),
                    ChannelConfiguration(name: "fan", limits: .continuous(.duty(min: 0, max: 1, maxRate: 0.5)),
                                         watchdogTimeout: commandWatchdog, isMotion: false),
                ],
                sensors: [RequiredSensor(name: "temperature", maxAge: temperatureMaxAge, reaction: .stop(.zero),
                                         validRange: temperatureRange)],
                reactions: [.remoteStop: .stop(remoteStopCategory)])
            if let max = heaterInterlockMax {
                configuration.interlocks = [ValueInterlock(sensor: "temperature", max: max, channels: ["heater"])]
            }
            configuration.startupTimeout = startupTimeout
            configuration.startLatched = startLatched
            configuration.maxTickAge = guardPeriod * 3
            return configuration
        }
    }

    public struct Status: Sendable, Equatable, BitwiseCopyable {
        /// The fresh reading the thermostat used (NaN: unknown — silent, stale or invalid).
        public var temperature = Double.nan
        public var wantedHeater = 0
        public var wantedFan = 0.0
        /// What the guard holds now (last approved or guard-applied).
        public var approvedHeater = 0
        public var approvedFan = 0.0
        public var verdicts = VerdictCounts()
        /// The heater's state confirmed while a switch had to wait (minimum on/off time, rate).
        public var heaterRefreshes = 0
        public var latched = false
        public var latchCause: FaultKind?
        /// Stop causes present now (they refuse a reset).
        public var causes: StopCauses = []
        public var linkUp = true
        public var deadlineFaults = 0
        public var remoteStops = 0
        public var resets = 0
        /// Resets refused (causes present or a stop still running), and the causes of the last one.
        public var refusedResets = 0
        public var lastRefusal: StopCauses = []
        public var reactivations = 0
        public var stalls = 0
        /// Remote resets that arrived before the latest remote stop (ignored).
        public var staleResetsIgnored = 0

        public static func == (a: Status, b: Status) -> Bool {
            a.temperature.bitPattern == b.temperature.bitPattern && a.wantedHeater == b.wantedHeater && a.wantedFan == b.wantedFan
                && a.approvedHeater == b.approvedHeater && a.approvedFan == b.approvedFan && a.verdicts == b.verdicts
                && a.heaterRefreshes == b.heaterRefreshes && a.latched == b.latched && a.latchCause == b.latchCause
                && a.causes == b.causes && a.linkUp == b.linkUp && a.deadlineFaults == b.deadlineFaults
                && a.remoteStops == b.remoteStops && a.resets == b.resets && a.refusedResets == b.refusedResets
                && a.lastRefusal == b.lastRefusal && a.reactivations == b.reactivations && a.stalls == b.stalls && a.staleResetsIgnored == b.staleResetsIgnored
        }
    }

    struct Control: RuntimeControl {
        var guardian: SafetyGuard
        var thermostat: Thermostat
        var status = RigRuntime.Status()
        /// A back end failed and is inactive until reactivated (a level for the guard).
        var backendDown = false
        /// Arrival of the latest remote stop: older resets never release it.
        var lastRemoteStopAt = Instant(nanoseconds: .min)

        mutating func noteReset(_ outcome: ResetOutcome) {
            switch outcome {
            case .released, .releasedIntoRecovery: status.resets += 1
            case .refused(let causes):
                status.refusedResets += 1
                status.lastRefusal = causes
            case .stillStopping:
                status.refusedResets += 1
                status.lastRefusal = []
            case .resetKeyHeldThrough:
                status.refusedResets += 1
                status.lastRefusal = StopCauses(.emergencyStopInput)
            case .notLatched: break
            }
        }

        mutating func refreshStatus() {
            status.latched = guardian.latch.isLatched
            status.latchCause = guardian.latch.cause
            status.causes = guardian.blockingCauses
            status.approvedHeater = guardian.currentValue(of: ChannelID(index: 0)).discreteValue ?? 0
            status.approvedFan = guardian.currentValue(of: ChannelID(index: 1)).continuousValue ?? 0
        }
    }

    public let configuration: Configuration
    /// The temperature route (`handle` dispatches to it).
    public let sensors: MQTTSensorInput
    public let audit: AuditLog
    public let actuators: ActuatorSet
    /// Remote stop/reset messages not acted on: retained ones (a stale "stop" or "reset" left on
    /// the broker must not act at connect) and payloads that are neither.
    public let remoteRetainedIgnored = Atomic<UInt64>(0)
    public let remoteUnrecognised = Atomic<UInt64>(0)
    private let shared: SharedState<Control>
    /// Published by the handlers (under the control lock: one writer at a time), read by anyone.
    private let statusCell = LatestValue(Status())
    private let faults: SourceHandle
    private let reactivations: SourceHandle
    private let remoteStop: SourceHandle
    private let remoteReset: SourceHandle

    /// Channels: 0 heater (discrete 0/1), 1 fan (duty 0…1). `actuators` builds the set bound to this
    /// runtime's guard (it gets the guard's seal). `link` tells whether the broker link is up (the
    /// MQTT client's connected state; an atomic read), re-checked on every guard tick.
    public init(configuration: Configuration = Configuration(), scheduler: Scheduler,
                link: @escaping @Sendable () -> Bool = { true },
                actuators makeActuators: (GuardSeal) throws -> ActuatorSet) throws {
        self.configuration = configuration
        let guardian = try SafetyGuard(configuration: configuration.guardConfiguration)
        let actuators = try boundActuators(guardian, makeActuators)
        self.actuators = actuators
        audit = guardian.audit
        let statusCell = self.statusCell
        let shared = SharedState(Control(guardian: guardian, thermostat: Thermostat(parameters: configuration.thermostat)))
        self.shared = shared
        let write: @Sendable (ApprovedCommand) -> Void = { actuators.write($0) }
        let temperatureID = guardian.sensor(named: "temperature")
        let temperature = scheduler.addSource("temperature", queue: QueueSpec(capacity: 4, overflow: .keepLatestPerKey),
                                              subscription: Subscription(priority: .normal, relativeDeadline: .milliseconds(100))) { event in
            guard case .scalar(let value) = event.payload else { return }
            shared.update(statusCell) { c in
                // Out of range is no sample (audited): the reading ages toward stale (fail closed);
                // a valid one also feeds the chamber interlock.
                if let temperatureID { c.guardian.noteSensor(temperatureID, value: value, at: event.release, emit: write) }
            }
        }
        sensors = MQTTSensorInput(routes: [.init(filter: configuration.temperatureTopic, fieldPath: configuration.temperatureField,
                                                 qos: 1, source: temperature)])

        // The remote stop latches (not a level: released only by a reset); the reset asks the guard,
        // which refuses it while a cause persists. Separate sources, so resets cannot crowd out a stop.
        let category = configuration.remoteStopCategory
        remoteStop = scheduler.addSource("remote-stop", queue: QueueSpec(capacity: 4, overflow: .dropOldest),
                                         subscription: Subscription(priority: .critical, relativeDeadline: .milliseconds(1))) { event in
            shared.update(statusCell) { c in
                c.status.remoteStops += 1
                c.lastRemoteStopAt = max(c.lastRemoteStopAt, event.release)
                c.guardian.trigger(.remoteStop, category: category, at: event.release, emit: write)
            }
        }
        remoteReset = scheduler.addSource("remote-reset", queue: QueueSpec(capacity: 4, overflow: .dropOldest),
                                          subscription: Subscription(priority: .normal, relativeDeadline: .milliseconds(50))) { event in
            shared.update(statusCell) { c in
                // Stops are dispatched first (critical): a reset that arrived before the latest stop
                // is older than it and must not release it.
                guard event.release > c.lastRemoteStopAt else {
                    c.status.staleResetsIgnored += 1
                    return
                }
                c.noteReset(c.guardian.reset(at: event.release))
            }
        }
        // Faults from outside the control path (a back end failed, the link dropped) come in as
        // events: the reporter may be inside a guard call on this very path (inline writes), so it
        // must not take the control lock itself.
        faults = scheduler.addSource("faults", queue: QueueSpec(capacity: 16, overflow: .dropOldest),
                                     subscription: Subscription(priority: .critical, relativeDeadline: .milliseconds(1))) { event in
            guard case .signal(let code, _) = event.payload, let kind = FaultKind(rawValue: Int(code)) else { return }
            shared.update(statusCell) { c in
                if kind == .actuatorFailure { c.backendDown = true }
                c.guardian.trigger(kind, at: event.release, emit: write)
            }
        }
        // Reactivation on the dispatch thread under the control lock: the back end's safe state
        // and the guard's knowledge of it change together (see RoverRuntime).
        reactivations = scheduler.addSource("actuator-reactivation", queue: QueueSpec(capacity: 4, overflow: .dropOldest),
                                            subscription: Subscription(priority: .critical, relativeDeadline: .milliseconds(5))) { event in
            guard case .object(let object) = event.payload, let request = object as? BackendName else { return }
            shared.update(statusCell) { c in
                // Still active: it never failed, so no safe state was re-applied to tell the guard of.
                let failed = actuators.state(of: request.name) == .inactive
                guard actuators.reactivate(request.name) else { return }
                c.backendDown = false
                guard failed else { return }
                for channel in actuators.channels(of: request.name) {
                    c.guardian.noteSafeStateApplied(to: channel, at: event.release)
                }
                c.status.reactivations += 1
            }
        }

        let lifetime = configuration.period * 2
        let clock = scheduler.clock
        let silence = configuration.thermostatSilence
        let heaterID = ChannelID(index: 0)
        scheduler.addPeriodic("thermostat", PeriodicSpec(period: configuration.period, relativeDeadline: configuration.thermostatDeadline,
                                                         priority: .normal,
                                                         critical: CriticalPolicy(consecutiveMisses: configuration.criticalMisses))) { event in
            if silence?.isSilent == true { return }
            shared.update(statusCell) { c in
                // Unknown (silent, stale, out of range) is NaN: the thermostat asks for the heater off.
                let t = temperatureID.flatMap { c.guardian.freshValue(of: $0, now: event.release) } ?? .nan
                c.status.temperature = t
                let (heater, fan) = c.thermostat.step(temperature: t)
                c.status.wantedHeater = heater
                c.status.wantedFan = fan
                let now = clock.now()
                let verdict = c.guardian.check(Command(channel: heaterID, value: .discrete(heater), origin: .policy,
                                                       issuedAt: event.release, validUntil: event.release + lifetime), now: now)
                c.status.verdicts.route(verdict, to: write)
                if case .rejected(let reason) = verdict, reason == .minOnTime || reason == .minOffTime || reason == .switchRate,
                   case .discrete(let held) = c.guardian.currentValue(of: heaterID) {
                    // The relay may not switch yet: confirm the state it holds, so the guard's
                    // watchdog and the relay's own time-out see a live controller, not silence.
                    let refresh = c.guardian.check(Command(channel: heaterID, value: .discrete(held), origin: .policy,
                                                           issuedAt: event.release, validUntil: event.release + lifetime), now: now)
                    if let approved = refresh.approved {
                        c.status.heaterRefreshes += 1
                        write(approved)
                    }
                }
                c.status.verdicts.route(c.guardian.check(Command(channel: ChannelID(index: 1), value: .continuous(fan), origin: .policy,
                                                                 issuedAt: event.release, validUntil: event.release + lifetime), now: now), to: write)
            }
        }
        let thermostatStatistics = scheduler.taskID(named: "thermostat").map { scheduler.statistics(for: $0) }
        let onTimeAtFault = SharedState<UInt64?>(nil)
        // Critical, and `maxTickAge` refuses commands when its ticks stop (as in RoverRuntime).
        scheduler.addPeriodic("guard", PeriodicSpec(period: configuration.guardPeriod, priority: .high,
                                                    critical: CriticalPolicy(consecutiveMisses: configuration.criticalMisses))) { event in
            let now = event.release
            // Every level, every tick (fail closed): the broker link, a failed back end, the
            // thermostat's deadline-fault streak.
            let up = link()
            shared.update(statusCell) { c in
                c.status.linkUp = up
                c.guardian.setCause(.connectionLost, present: !up, at: now, emit: write)
                c.guardian.setCause(.actuatorFailure, present: c.backendDown, at: now, emit: write)
                if let stats = thermostatStatistics, c.guardian.present.contains(.deadlineFault) {
                    // The streak is broken by an on-time completion after the fault.
                    let onTime = stats.onTimeCompletions
                    if let atFault = onTimeAtFault.withLock({ $0 }), onTime > atFault {
                        c.guardian.setCause(.deadlineFault, present: false, at: now, emit: write)
                        onTimeAtFault.withLock { $0 = nil }
                    }
                }
                // A channel the writer put in its safe state (seal refusal, overtaken write): the
                // guard learns it, unless it has commanded the channel since.
                c.guardian.applySafeStateNotices(from: actuators, at: now)
                c.guardian.tick(now: now, emit: write)
            }
        }
        // A handler stuck past its budget: the supervisor thread puts the relays in their safe
        // state without taking the control lock (the stuck handler may hold it); once the handler
        // returns, the guard latches and the back ends come back de-energised, in step with it.
        scheduler.onStall = { _ in actuators.emergencySafeState() }
        scheduler.onStallRecovered = { recovery in
            shared.update(statusCell) { c in
                c.status.stalls += 1
                c.guardian.trigger(.dispatchStall, at: recovery.endedAt, emit: write)
                for name in actuators.backendNames where actuators.reactivate(name) {
                    for channel in actuators.channels(of: name) { c.guardian.noteSafeStateApplied(to: channel, at: recovery.endedAt) }
                }
            }
        }
        scheduler.onDeadlineFault = { fault in
            if let stats = thermostatStatistics {
                let onTime = stats.onTimeCompletions
                onTimeAtFault.withLock { $0 = onTime }
            }
            shared.update(statusCell) { c in
                c.status.deadlineFaults += 1
                c.guardian.handle(fault, emit: write)
            }
        }
    }

    /// Subscribes the temperature and the remote stop and reset topics (renewed by the client
    /// after every reconnect). Route the client's messages to `handle`.
    public func subscribe(on client: MQTTClient) throws(MQTTError) {
        try sensors.subscribe(on: client)
        try client.subscribe(.init(filter: configuration.remoteStopTopic, qos: 1))
        try client.subscribe(.init(filter: configuration.remoteResetTopic, qos: 1))
    }

    /// A message from the broker (the client's network thread, or a lockstep test).
    public func handle(_ message: MQTTMessage) {
        let release = Instant(nanoseconds: message.arrival)
        switch message.topic {
        case configuration.remoteStopTopic, configuration.remoteResetTopic:
            let isStop = message.topic == configuration.remoteStopTopic
            // A retained message is history the broker replays at every subscribe: a stale
            // "stop" or "reset" must not act at connect.
            guard !message.retained else {
                remoteRetainedIgnored.add(1, ordering: .relaxed)
                return
            }
            guard Self.remoteWord(message.payload, accepts: isStop ? ["stop", "1", "true", "on"] : ["reset", "1", "true"]) else {
                remoteUnrecognised.add(1, ordering: .relaxed)
                return
            }
            _ = (isStop ? remoteStop : remoteReset).post(.signal(code: 0, value: 0), release: release)
        default:
            sensors.handle(message)
        }
    }

    static func remoteWord(_ payload: [UInt8], accepts words: [String]) -> Bool {
        guard payload.count <= 32 else { return false }
        var text = Substring(String(decoding: payload, as: UTF8.self))
        while text.first?.isWhitespace == true { text.removeFirst() }
        while text.last?.isWhitespace == true { text.removeLast() }
        return words.contains(text.lowercased())
    }

    /// Asks for a back end to be reactivated (its link is back): done on the dispatch thread, in its
    /// safe state, with the guard told before any command can reach it. The heater comes on again
    /// only after a reset: the guard latched when the link went.
    @discardableResult
    public func requestReactivation(of backend: String, at instant: Instant) -> Bool {
        reactivations.post(.object(BackendName(backend)), release: instant).wasAccepted
    }

    /// Hands a fault to the guard (through the scheduler), e.g. `.actuatorFailure`, `.connectionLost`.
    @discardableResult
    public func report(_ kind: FaultKind, at instant: Instant) -> Bool {
        faults.post(.signal(code: Int32(kind.rawValue), value: 0), release: instant).wasAccepted
    }

    /// As the handlers last published it (lock-free: readers never make a handler wait).
    public var status: Status { statusCell.load() }
    public var isLatched: Bool { statusCell.load().latched }
}

/// TEST HOOK: silences the policy tasks (they run but send nothing), as a control path that
/// stopped producing commands would; the guard's command watchdog must then act.
public final class PolicySilence: Sendable {
    private let silent = Atomic<Bool>(false)
    public init() {}
    public func set(_ value: Bool) { silent.store(value, ordering: .releasing) }
    public var isSilent: Bool { silent.load(ordering: .acquiring) }
}

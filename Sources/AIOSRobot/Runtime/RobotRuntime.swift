import Actuators
import RTScheduler
import RobotConfig
import SafetyGuard
import Synchronization
import Transports

/// Any robot or rig, built from its configuration: inputs post deadline-tagged events to sensor and
/// gamepad sources; each policy is a periodic task whose output competes for its channels (highest
/// priority with a fresh output wins, filters apply to the winner); every command goes through the
/// one guard; approved commands reach the actuator set bound to it. The guard ticks on its own
/// critical task and re-checks every level (e-stop and its devices, links, the broker, failed back
/// ends, the deadline-fault streak). The same object runs on virtual time in lockstep tests and on
/// the real-time dispatch thread under `robotd run`: only the clock and the transports differ.
public final class RobotRuntime: Sendable {
    /// The required sensor that stands for e-stop devices' keep-alive frames.
    public static let estopDeviceSensor = "estop-device"
    /// The guard's own periodic task (critical), as the scheduler and telemetry name it.
    public static let guardTaskName = "guard"

    public struct Options: Sendable {
        /// TEST HOOK (`--fault policy-hang|policy-spin`): strikes inside the first critical policy's step.
        public var policyFault: PolicyFaultHook?
        /// TEST HOOK: while set, every policy task runs but sends nothing (a control path gone
        /// quiet); the guard's command watchdogs must then act.
        public var policySilence: PolicySilence?
        /// TEST HOOK: the first critical policy's step overruns its deadline a given number of times.
        public var policyOverrun: PolicyOverrunHook?
        /// Whether the broker link is up (the MQTT client's state; an atomic read), re-checked every
        /// guard tick. nil: no broker.
        public var brokerLink: (@Sendable () -> Bool)?
        public init() {}
    }

    public let configuration: RobotConfiguration
    public let actuators: ActuatorSet
    public let audit: AuditLog
    /// The guard's required sensors by index (audit records name a sensor by its index).
    public let sensorNames: [String]
    public let channelNames: [String]
    public let policyNames: [String]
    /// What the daemon opens, by input name (plus the remote stop's and the goals' subscriptions, if any).
    public let endpoints: [(name: String, endpoint: InputEndpoint)]
    /// E-stop inputs' signals (level, sticky presses, device state), set by their reader threads.
    public let estops: [(input: String, signal: EStopSignal)]
    /// Input links the guard watches, by input name.
    public let links: [(input: String, link: InputLink)]
    /// Each input's message rate and gaps (telemetry), by input name.
    public let inputArrivals: [(input: String, statistics: ArrivalStatistics)]
    /// Remote stop/reset messages not acted on: retained ones and unrecognised payloads.
    public let remoteStopCounters = RemoteStopCounters()
    /// The latest remote reset requests with their users, outcomes and reasons (the `safety`
    /// topic's source); empty without `estop.remote`.
    public let remoteResets: RemoteResetLog
    /// Reset requests per user before any work on them; what it refused, per user, for the
    /// `safety` topic.
    public let remoteResetLimit: RemoteResetRateLimit
    /// Planning's side of the runtime (the `planner` source, the executor); nil without abilities.
    public let planning: PlanningPort?

    private let shared: SharedState<Control>
    private let statusCell = LatestValue(RuntimeStatus())
    /// The guard's identity and latch epoch (an atomic: read from any thread).
    private let seal: GuardSeal
    private let faults: SourceHandle
    private let reactivations: SourceHandle

    /// Registers sources and tasks on `scheduler` (before it starts) and drives the actuator set
    /// that `makeActuators` builds, bound to this runtime's guard (it gets the guard's seal);
    /// channel ids are the configuration's channel order.
    public init(configuration: RobotConfiguration, scheduler: Scheduler, options: Options = Options(),
                actuators makeActuators: (GuardSeal) throws -> ActuatorSet) throws {
        self.configuration = configuration
        let guardian = try SafetyGuard(configuration: try GuardConfiguration(robot: configuration))
        let actuators = try boundActuators(guardian, makeActuators)
        self.actuators = actuators
        seal = guardian.seal
        audit = guardian.audit
        sensorNames = guardian.configuration.sensors.map(\.name)
        channelNames = configuration.channels.map(\.name)
        policyNames = configuration.policies.map(\.name)
        let write: @Sendable (ApprovedCommand) -> Void = { actuators.write($0) }
        let statusCell = self.statusCell
        let shared = SharedState(Control(guardian: guardian, world: World(sensorCount: sensorNames.count, gamepads: []),
                                         latchBase: RemoteStop.randomLatchBase()))
        self.shared = shared

        // Inputs: each kind registers its sources through the builder, which owns the handlers.
        var estopSignals: [(input: String, signal: EStopSignal)] = []
        if case .configured(let e) = configuration.estop { estopSignals = e.inputs.map { ($0, EStopSignal()) } }
        let builder = InputBuilder(configuration: configuration, scheduler: scheduler, shared: shared, statusCell: statusCell,
                                   write: write, sensorNames: sensorNames, estops: estopSignals)
        var endpoints: [(String, InputEndpoint)] = []
        for input in configuration.inputs {
            guard let kind = RobotKinds.input(input.kind) else {
                throw KindError("input \(input.name): unknown kind \(input.kind) (kinds: \(RobotKinds.inputs.map { $0.spec.kind }.joined(separator: ", ")))")
            }
            builder.current = input
            endpoints.append((input.name, try kind.make(input, context: builder)))
        }
        // An e-stop input that is not bound to a device's `estop` key would be an e-stop that does
        // nothing: refused.
        if let unbound = estopSignals.first(where: { !builder.boundEStops.contains($0.input) }) {
            throw KindError("estop.inputs: \(unbound.input) is not an evdev input with a key of action `estop`")
        }
        estops = estopSignals
        // The remote stop's end-to-end keep-alive is a link like an input's: silent past its
        // timeout (or never heard within the start-up time) is a lost link, a stop.
        var remoteAlive: InputLink?
        if case .configured(let e) = configuration.estop, let ms = e.remote?.heartbeatMs {
            remoteAlive = InputLink(name: "estop.remote", timeout: .milliseconds(ms))
        }
        links = builder.links + (remoteAlive.map { [(input: "estop.remote", link: $0)] } ?? [])
        inputArrivals = builder.arrivals
        let gamepadInputs = try Self.alignGamepads(builder.gamepads, endpoints: endpoints)
        shared.withLock {
            $0.world.gamepads = builder.gamepads.map { GamepadState(axisCount: $0.axes.count) }
            $0.gamepadInputs = gamepadInputs
        }

        // Policies: sources compete for their channels, filters adjust the winner.
        let context = PolicyBuildContext(configuration: configuration, sensorNames: sensorNames,
                                         gamepads: builder.gamepads.map { ($0.input, $0.axes) })
        var plans: [PolicyPlan] = []
        var sources: [any ControlPolicy] = []
        var filters: [any ControlFilter] = []
        for (index, policy) in configuration.policies.enumerated() {
            guard let kind = RobotKinds.policy(policy.kind) else {
                throw KindError("policy \(policy.name): unknown kind \(policy.kind) (kinds: \(RobotKinds.policies.map { $0.spec.kind }.joined(separator: ", ")))")
            }
            let channels = try policy.channels.map { name throws(KindError) in
                guard let i = configuration.channels.firstIndex(where: { $0.name == name }) else {
                    throw KindError("policy \(policy.name): no channel named \(name)")
                }
                return i
            }
            guard channels.count <= ChannelValues.capacity else {
                throw KindError("policy \(policy.name): at most \(ChannelValues.capacity) channels per policy")
            }
            switch try kind.make(policy, context: context) {
            case .source(let p):
                guard let period = policy.periodMs, period > 0 else { throw KindError("policy \(policy.name): period_ms must be positive") }
                plans.append(PolicyPlan(index: index, name: policy.name, channels: channels, isFilter: false, slot: sources.count,
                                        priority: policy.priority ?? 0, timeout: .milliseconds(policy.timeoutMs ?? period * 3),
                                        origin: p.origin, lifetime: min(.milliseconds(period * 3), .seconds(1)),
                                        discrete: channels.map { configuration.channels[$0].kind == "discrete" }))
                sources.append(p)
            case .filter(let f):
                plans.append(PolicyPlan(index: index, name: policy.name, channels: channels, isFilter: true, slot: filters.count,
                                        priority: 0, timeout: .zero, origin: .policy, lifetime: .zero, discrete: []))
                filters.append(f)
            }
        }
        for filter in plans where filter.isFilter && !plans.contains(where: { !$0.isFilter && $0.channels == filter.channels }) {
            throw KindError("policy \(filter.name): a filter must have the same channels as a policy it filters")
        }
        // A filter applies to a winner with exactly its channel list: a policy that shares a
        // channel with it in another order or another set would pass unfiltered (an obstacle stop
        // that does not stop), so such a file is refused.
        for filter in plans where filter.isFilter {
            for source in plans where !source.isFilter && source.channels != filter.channels
                && !Set(source.channels).isDisjoint(with: filter.channels) {
                throw KindError("policy \(source.name): shares channels with the filter \(filter.name) but lists \(source.channels.map { configuration.channels[$0].name }) instead of its \(filter.channels.map { configuration.channels[$0].name }): it would not be filtered (give it the filter's channels, in the same order)")
            }
        }
        let policyPlans = plans
        shared.withLock { c in
            c.sources = sources
            c.filters = filters
            c.plans = policyPlans
            c.outputs = Array(repeating: nil, count: policyPlans.count)
            if let o = configuration.odometry, let encoders = c.guardian.sensor(named: o.encoders),
               let left = configuration.channels.firstIndex(where: { $0.name == o.leftWheel }),
               let right = configuration.channels.firstIndex(where: { $0.name == o.rightWheel }) {
                let start = o.initialPose ?? PoseSettings(x: 0, y: 0, yaw: 0)
                c.odometry = OdometryPlan(sensor: encoders.index, left: left, right: right, estimator: DiffDriveOdometry(
                    geometry: .init(wheelRadius: o.wheelRadius, trackWidth: o.wheelSeparation, ticksPerRevolution: o.ticksPerRevolution),
                    x: start.x, y: start.y, yaw: start.yaw))
            }
        }

        // Faults from outside the control path (a back end failed, a link dropped) come in as
        // events: the reporter may be inside a guard call on this very path (inline writes), so it
        // must not take the control lock itself.
        faults = scheduler.addSource("faults", queue: QueueSpec(capacity: 16, overflow: .dropOldest),
                                     subscription: Subscription(priority: .critical, relativeDeadline: .milliseconds(1))) { event in
            guard case .signal(let code, _) = event.payload, let kind = FaultKind(rawValue: Int(code)) else { return }
            shared.update(statusCell) { c in
                // A failed back end stays inactive until reactivated: a level the guard tick reads
                // from the lanes themselves (`anyBackendInactive`).
                c.guardian.trigger(kind, at: event.release, emit: write)
            }
        }
        // Reactivation on the dispatch thread under the control lock: the back end's safe state and
        // the guard's knowledge of it change together, so no command computed from the old state
        // can reach the back end in between.
        reactivations = scheduler.addSource("actuator-reactivation", queue: QueueSpec(capacity: 4, overflow: .dropOldest),
                                            subscription: Subscription(priority: .critical, relativeDeadline: .milliseconds(5))) { event in
            guard case .object(let object) = event.payload, let request = object as? BackendName else { return }
            shared.update(statusCell) { c in
                let failed = actuators.state(of: request.name) == .inactive
                guard actuators.reactivate(request.name) else { return }
                guard failed else { return }
                for channel in actuators.channels(of: request.name) { c.guardian.noteSafeStateApplied(to: channel, at: event.release) }
                c.status.reactivations += 1
            }
        }
        var resetUsers: [String] = []
        if case .configured(let e) = configuration.estop, let remote = e.remote { resetUsers = remote.resetUsers }
        let remoteResetLimit = RemoteResetRateLimit(authorisedUsers: resetUsers)
        self.remoteResetLimit = remoteResetLimit
        if case .configured(let e) = configuration.estop, let remote = e.remote, let topics = configuration.inboundTopics {
            let log = RemoteResetLog(users: remote.resetUsers)
            remoteResets = log
            endpoints.append(("estop.remote", RemoteStop.register(remote, topics: topics, scheduler: scheduler, shared: shared,
                                                                  statusCell: statusCell, write: write, counters: remoteStopCounters, log: log,
                                                                  limit: remoteResetLimit, alive: remoteAlive)))
        } else {
            remoteResets = RemoteResetLog(users: [])
        }
        // Plans: the planner service's source and the executor's task (with abilities only).
        let planning = PlanningPort.register(configuration: configuration, scheduler: scheduler, shared: shared,
                                             statusCell: statusCell, plans: plans)
        self.planning = planning
        if let planning, configuration.planner.goals.mqtt {
            endpoints.append((GoalTopic.endpointName, GoalTopic.endpoint(prefix: configuration.topicPrefix, inbox: planning.goals)))
        }
        self.endpoints = endpoints

        // One periodic task per proposing policy.
        let clock = scheduler.clock
        let criticalMisses = configuration.safety.criticalMisses
        let firstCritical = plans.first { !$0.isFilter && configuration.policies[$0.index].critical }?.index
        for plan in plans where !plan.isFilter {
            let policy = configuration.policies[plan.index]
            let period = Duration.milliseconds(policy.periodMs ?? 0)
            let hook = plan.index == firstCritical ? options.policyFault : nil
            let silence = options.policySilence
            let overrun = plan.index == firstCritical ? options.policyOverrun : nil
            scheduler.addPeriodic(plan.name, PeriodicSpec(
                period: period, relativeDeadline: policy.deadlineMs.map { .milliseconds($0) }, priority: policy.critical ? .high : .normal,
                critical: policy.critical ? CriticalPolicy(consecutiveMisses: criticalMisses) : nil)) { event in
                if silence?.isSilent == true { return }
                shared.update(statusCell) { c in
                    // The test hook strikes inside the control lock, as a real stuck policy would.
                    hook?.strike(at: event.release)
                    overrun?.strike(release: event.release, deadline: event.deadline, clock: clock)
                    c.step(plan, release: event.release, now: clock.now(), write: write)
                }
            }
        }

        // The guard's own critical task: every level, every tick (fail closed).
        let brokerLink = options.brokerLink
        let levels = LevelSources(estops: self.estops, links: self.links, brokerLink: brokerLink, actuators: actuators,
                                  estopDevice: guardian.sensor(named: Self.estopDeviceSensor), startup: guardian.configuration.startupTimeout)
        shared.withLock { $0.levels = levels }
        scheduler.addPeriodic(Self.guardTaskName, PeriodicSpec(period: .milliseconds(configuration.safety.guardPeriodMs), priority: .high,
                                                    critical: CriticalPolicy(consecutiveMisses: criticalMisses))) { event in
            let now = event.release
            let broker = brokerLink?() ?? true
            shared.update(statusCell) { c in
                c.refreshLevels(now: now, broker: broker, write: write)
                // Each faulting task's streak is broken by an on-time completion after its fault;
                // the cause clears only when every faulted task has recovered.
                if !c.missStreaks.isEmpty {
                    var i = 0
                    while i < c.missStreaks.count {
                        if c.missStreaks[i].task.onTimeCompletions > c.missStreaks[i].onTimeAtFault { c.missStreaks.remove(at: i) } else { i += 1 }
                    }
                    if c.missStreaks.isEmpty { c.guardian.setCause(.deadlineFault, present: false, at: now, emit: write) }
                }
                c.guardian.applySafeStateNotices(from: actuators, at: now)
                c.guardian.tick(now: now, emit: write)
            }
            // The links' keep-alive (real-time safe: a flag and a wake): it stops when the guard does.
            actuators.heartbeat()
        }
        // A handler stuck past its budget: the supervisor thread puts every back end in its safe
        // state on a path that takes no lock (the stuck handler may hold the control lock); once
        // the handler returns, the guard latches before anything else is dispatched, and the back
        // ends come back de-energised, in step with the guard.
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
        scheduler.onDeadlineFault = { [unowned scheduler] fault in
            let task = scheduler.statistics(for: fault.task)
            shared.update(statusCell) { c in
                if let i = c.missStreaks.firstIndex(where: { $0.task === task }) {
                    c.missStreaks[i].onTimeAtFault = task.onTimeCompletions
                } else {
                    c.missStreaks.append((task, task.onTimeCompletions))
                }
                c.status.deadlineFaults += 1
                c.guardian.handle(fault, emit: write)
            }
        }
    }

    /// Asks for a back end to be reactivated (its link is back): done on the dispatch thread, in its
    /// safe state, with the guard told before any command can reach it. Motion needs a reset first
    /// if the guard latched when the link went.
    @discardableResult
    public func requestReactivation(of backend: String, at instant: Instant) -> Bool {
        reactivations.post(.object(BackendName(backend)), release: instant).wasAccepted
    }

    /// Hands a fault to the guard (through the scheduler), e.g. `.actuatorFailure`, `.connectionLost`.
    @discardableResult
    public func report(_ kind: FaultKind, at instant: Instant) -> Bool {
        faults.post(.signal(code: Int32(kind.rawValue), value: 0), release: instant).wasAccepted
    }

    /// The actuator set reported a back end's failure (it is inactive until reactivated): a level
    /// for the guard (`actuator-failure`), and `connection-lost` at once if the link went.
    @discardableResult
    public func reportActuatorFault(lostLink: Bool, at instant: Instant) -> Bool {
        faults.post(.signal(code: Int32((lostLink ? FaultKind.connectionLost : .actuatorFailure).rawValue), value: 1),
                    release: instant).wasAccepted
    }

    /// What an e-stop device's reader says: its end (EOF, ENODEV, the FIFO writer gone) is the
    /// e-stop device lost — a stop, re-checked every guard tick — and events again clear it.
    /// Returns a line for the log.
    public func handle(_ notice: InputDeviceReader.Notice, arrival: Int64, input: String) -> String {
        let signal = estops.first { $0.input == input }?.signal
        let gamepad = endpoints.lazy.compactMap { e -> GamepadInput? in
            if e.name == input, case .inputDevice(let d) = e.endpoint { d.gamepad } else { nil }
        }.first
        switch notice {
        case .opened(let name):
            signal?.levelUnknown()  // before clearing the loss
            signal?.setDeviceLost(false)
            // A deadman held while it was opened enables nothing: teleop waits for a press after this.
            gamepad?.deviceOpened(arrival: arrival)
            setLink(input, up: true, at: Instant(nanoseconds: arrival))
            return signal != nil ? name + " — e-stop level unknown until its key reports (every channel held until then)" : name
        case .resynchronised:
            gamepad?.resynchronised(arrival: arrival)
            return "SYN_DROPPED: resynchronised"
        case .ended(let reason):
            signal?.setDeviceLost(true)
            // Whatever it held (a deadman, a stick) is released: a lost device enables nothing.
            gamepad?.deviceLost(arrival: arrival)
            // An e-stop device's loss is its own stop cause (`estop-device-lost`); any other
            // input device's is a lost link.
            if signal == nil { setLink(input, up: false, at: Instant(nanoseconds: arrival)) }
            return "ended: \(reason)" + (signal != nil ? " — e-stop device lost" : " — input lost")
        case .writerGone:
            signal?.setDeviceLost(true)
            gamepad?.writerGone()  // its unfinished frame must not merge with the next writer's
            gamepad?.deviceLost(arrival: arrival)
            // An e-stop device's loss is its own stop cause (`estop-device-lost`); any other
            // input device's is a lost link.
            if signal == nil { setLink(input, up: false, at: Instant(nanoseconds: arrival)) }
            return "the writer went away" + (signal != nil ? " — e-stop device lost" : " — input lost")
        case .resumed:
            signal?.levelUnknown()
            signal?.setDeviceLost(false)
            gamepad?.deviceOpened(arrival: arrival)
            setLink(input, up: true, at: Instant(nanoseconds: arrival))
            return "events again"
        case .keysAtOpen(let levels):
            return gamepad?.keysAtOpen(levels, arrival: arrival) ?? "keys at open: no gamepad"
        }
    }

    /// An input's link went down (EOF, EIO) or came back. Down is a level the guard re-checks on
    /// every tick (`connection-lost`): a reset is refused until the link is up again.
    public func setLink(_ input: String, up: Bool, at instant: Instant) {
        guard let link = links.first(where: { $0.input == input })?.link else { return }
        link.set(up: up)
        if !up { report(.connectionLost, at: instant) }
    }

    /// The reader side of each gamepad the inputs registered, in registration order — the order
    /// of `World.gamepads` and of the axis indices the policies were built with. Refused with the
    /// input's name when one is not carried by its endpoint, or carries other axes than it
    /// registered: the refresh before each step pairs them by index, and a gap would hand one
    /// pad's deadman and sticks to another's policy.
    static func alignGamepads(_ registered: [(input: String, axes: [String])],
                              endpoints: [(String, InputEndpoint)]) throws(KindError) -> [GamepadInput] {
        var aligned: [GamepadInput] = []
        for pad in registered {
            let carried = endpoints.lazy.compactMap { e -> GamepadInput? in
                if e.0 == pad.input, case .inputDevice(let d) = e.1 { d.gamepad } else { nil }
            }.first
            guard let gamepad = carried else {
                throw KindError("input \(pad.input): registered a gamepad that its endpoint does not carry")
            }
            let axes = gamepad.mapping.axes.map(\.name)
            guard axes == pad.axes, gamepad.axisLevels.count == pad.axes.count else {
                throw KindError("input \(pad.input): its gamepad has the axes [\(axes.joined(separator: ", "))], "
                                + "not the [\(pad.axes.joined(separator: ", "))] it registered")
            }
            aligned.append(gamepad)
        }
        return aligned
    }

    /// As the handlers last published it (lock-free: readers never make a handler wait).
    public var status: RuntimeStatus { statusCell.load() }
    /// How many times the handlers have published: it stops moving while a handler is stuck (the
    /// guard tick alone publishes every guard period). Lock-free.
    public var statusPublications: UInt64 { statusCell.stores }
    public var isLatched: Bool { statusCell.load().latched }
    /// The guard's latch epoch: latches (and escalations) and resets so far, lock-free and current
    /// the moment the guard moves it (the status above is published when a handler ends). A stop
    /// and its reset between two looks leave `isLatched` as it was, never this.
    public var latchEpoch: UInt64 { seal.epoch }
}

/// A policy as the runtime schedules it.
struct PolicyPlan: Sendable {
    /// In the configuration's `policies`.
    var index: Int
    var name: String
    /// Guard channel indices, in the policy's order.
    var channels: [Int]
    var isFilter: Bool
    /// Index in `Control.sources` or `Control.filters`.
    var slot: Int
    var priority: Int
    /// An output older than this does not win.
    var timeout: Duration
    var origin: CommandOrigin
    /// How long its commands stay valid after their release.
    var lifetime: Duration
    /// Per channel: discrete (values are states) or continuous.
    var discrete: [Bool]
}

/// Differential-drive odometry fed by one sensor's encoder frames.
struct OdometryPlan: Sendable {
    var sensor: Int
    var left: Int
    var right: Int
    var estimator: DiffDriveOdometry
}

/// Several e-stop devices read as one: asserted if any is, presses summed (each count is sticky),
/// the latest release, the oldest keep-alive (a device that never sent one leaves it unknown, so
/// the keep-alive sensor is not fed: any silent device makes it stale), any lost, any whose level
/// is unknown since its opening.
struct EStopReading {
    var asserted = false
    var unknown = false
    var presses: UInt64 = 0
    var releasedAt: Instant?
    var oldestFrame: Instant?
    var anyLost = false

    init(_ estops: [(input: String, signal: EStopSignal)]) {
        var silent = false
        for i in estops.indices {  // not for-in: that allocates per element in unoptimised builds
            let s = estops[i].signal
            asserted = asserted || s.isPressed
            // The loss before the level: a reopening writes them the other way round (unknown,
            // then not lost), so a reading never sees the device back with its level still known.
            anyLost = anyLost || s.isDeviceLost
            unknown = unknown || s.isLevelUnknown
            presses &+= s.presses
            if let r = s.releasedInstant { releasedAt = max(releasedAt ?? r, r) }
            let last = s.lastFrameAt
            if last > 0 { oldestFrame = min(oldestFrame ?? Instant(nanoseconds: last), Instant(nanoseconds: last)) } else { silent = true }
        }
        if silent { oldestFrame = nil }
    }
}

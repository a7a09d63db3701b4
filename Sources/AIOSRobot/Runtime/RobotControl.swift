import Actuators
import RTScheduler
import SafetyGuard

/// The generic runtime's control state, behind one lock (`SharedState`): the guard, the world the
/// policies see, the policies themselves (existentials mutated in place in their arrays: no copy,
/// no allocation per step), their last outputs for arbitration, the odometry, the status.
struct Control: RuntimeControl {
    var guardian: SafetyGuard
    var world: World
    let sensorIDs: [SensorID]
    var sources: [any ControlPolicy] = []
    var filters: [any ControlFilter] = []
    var plans: [PolicyPlan] = []
    /// Per policy (configuration index): its last output and its release, nil when it has no opinion.
    var outputs: [(values: ChannelValues, at: Instant)?] = []
    var odometry: OdometryPlan?
    /// The plan executor (a configuration with `abilities`; docs/planner.md, "Execution").
    var execution: PlanExecutor?
    /// The gamepads' deadman and axis levels (atomics set by their reader threads), in
    /// `world.gamepads` order.
    var gamepadInputs: [GamepadInput] = []
    /// Sensors that have carried a value: a sample that only proves a sensor alive (an IMU frame)
    /// must never keep such a sensor's last value fresh.
    var valueSensors = Set<Int>()
    var status = RuntimeStatus()
    /// The critical tasks whose miss streaks raised a deadline fault, with their on-time
    /// completions then: the cause holds until every one of them has recovered.
    var missStreaks: [(task: TaskStatistics, onTimeAtFault: UInt64)] = []
    /// The latch number a remote reset request must name (`RuntimeStatus.latchSequence`; see
    /// `RemoteStop`): it advances once per handler that changed the stop state. It starts at a
    /// random base (`RemoteStop.randomLatchBase`), so a number from another run is practically
    /// never the current one.
    var latchSequence: UInt64
    /// Set by a handler whose change the guard's epoch, stop events and causes do not show (an
    /// answered reset request).
    var stopStateChanged = false
    /// The guard's epoch (latches, escalations, releases) as `refreshStatus` last saw it.
    var seenEpoch: UInt64 = 0
    /// The guard's stop events (every trigger, even one that finds it already latched, every
    /// e-stop press) as `refreshStatus` last saw them.
    var seenStopEvents: UInt64 = 0
    /// What the guard tick re-reads as levels (set once the inputs are built): a reset reads them
    /// first too (`refreshLevels`).
    var levels: LevelSources?

    init(guardian: SafetyGuard, world: World, latchBase: UInt64) {
        self.guardian = guardian
        self.world = world
        sensorIDs = guardian.configuration.sensors.compactMap { guardian.sensor(named: $0.name) }
        seenEpoch = guardian.epoch
        seenStopEvents = guardian.stopEvents
        latchSequence = latchBase
        status.latchSequence = latchSequence
    }

    mutating func refreshStatus() {
        status.latched = guardian.latch.isLatched
        status.latchCause = guardian.latch.cause
        let causes = guardian.blockingCauses
        // A new stop state: a latch, an escalation or a release (the epoch moved), any stop event
        // (a one-shot fault or a remote stop while already latched), a stop cause that was not
        // there, or what a handler said. One step per handler is enough: numbers
        // are compared for equality only.
        if stopStateChanged || guardian.epoch != seenEpoch || guardian.stopEvents != seenStopEvents
            || !causes.isSubset(of: status.causes) {
            // Past 2^53 (JSON's exact integers; never reached in practice from a 40-bit base) it
            // starts again low rather than leave the range a request can name.
            latchSequence = latchSequence < RemoteStop.largestLatch ? latchSequence + 1 : 1
            stopStateChanged = false
            seenEpoch = guardian.epoch
            seenStopEvents = guardian.stopEvents
        }
        status.latchSequence = latchSequence
        status.causes = causes
        status.inRecovery = guardian.inRecovery
        status.holding = guardian.isHolding
        status.holdCauses = StopCauses(rawValue: guardian.holdMask)
        for i in 0..<min(guardian.configuration.channels.count, RuntimeStatus.channelCapacity) {
            status.approved[i] = switch guardian.currentValue(of: ChannelID(index: i)) {
            case .continuous(let v): v
            case .discrete(let s): Double(s)
            }
        }
    }

    mutating func noteReset(_ outcome: ResetOutcome?) {
        switch outcome {
        case .released?, .releasedIntoRecovery?: status.resets += 1
        case .refused(let causes)?:
            status.refusedResets += 1
            status.lastRefusal = causes
        case .resetKeyHeldThrough?:
            status.refusedResets += 1
            status.lastRefusal = StopCauses(.emergencyStopInput)
        case .stillStopping?:
            status.refusedResets += 1
            status.lastRefusal = []
        case .notLatched?, nil: break
        }
    }

    /// Every level the guard re-reads on each tick — the e-stop devices (presses, the device
    /// lost), the input links (the remote stop's keep-alive among them), the broker link, any back
    /// end inactive — as they stand at `now`. The guard tick calls it, and so does every reset
    /// (remote or key) just before it: a level that changed since the last tick must not let a
    /// reset through until the next one. `broker`: the broker link read outside the lock (nil:
    /// read here; `MQTTClient.isSubscribed` is atomics only).
    mutating func refreshLevels(now: Instant, broker: Bool? = nil, write: (ApprovedCommand) -> Void) {
        guard let levels else { return }
        // One reading of the devices serves the latch, the keep-alive and the device level.
        if let e = observeEStops(levels.estops, at: now, write: write) {
            if let device = levels.estopDevice, let oldest = e.oldestFrame { guardian.noteSensor(device, at: oldest) }
            guardian.setCause(.estopDeviceLost, present: e.anyLost, at: now, emit: write)
        }
        let start = guardian.firstTick ?? now
        // An index loop: `contains(where:)` allocates per element in unoptimised builds.
        var linksUp = broker ?? levels.brokerLink?() ?? true
        let links = levels.links
        for i in links.indices where links[i].link.isLost(now: now, since: start, startup: levels.startup) { linksUp = false }
        status.linksUp = linksUp
        guardian.setCause(.connectionLost, present: !linksUp, at: now, emit: write)
        // Any back end not active (failed, not yet reactivated) is the level, whichever one:
        // another's reactivation must not clear it.
        guardian.setCause(.actuatorFailure, present: levels.actuators.anyBackendInactive, at: now, emit: write)
    }

    /// Every e-stop device read as one (levels, sticky presses, releases), for the guard. Without
    /// e-stop devices: nothing to observe.
    @discardableResult
    mutating func observeEStops(_ estops: [(input: String, signal: EStopSignal)], at now: Instant,
                                write: (ApprovedCommand) -> Void) -> EStopReading? {
        guard !estops.isEmpty else { return nil }
        let e = EStopReading(estops)
        guardian.observeEStop(asserted: e.asserted, presses: e.presses, releasedAt: e.releasedAt, at: now, emit: write)
        // An e-stop whose level is unknown since its device opened (a mushroom may be latched down
        // behind it) holds every channel, latched or not, until its key reports: up releases the hold,
        // down is a press (a latch). Its own cause: no stop category, no latch number moved.
        guardian.setCause(.estopUnknown, present: e.unknown, at: now, emit: write)
        return e
    }

    /// Fresh sensor values for the policies (unknown: NaN), the gamepads' levels, and the pose only
    /// while the encoders that feed it are fresh (a frozen pose is no pose).
    mutating func refreshWorld(at now: Instant) {
        for i in sensorIDs.indices {
            let v = guardian.freshValue(of: sensorIDs[i], now: now) ?? .nan
            world.sensors[i] = v
            if i < RuntimeStatus.sensorCapacity { status.sensors[i] = v }
        }
        world.latched = guardian.latch.isLatched
        world.lastReset = guardian.latch.lastReset
        for i in gamepadInputs.indices where i < world.gamepads.count {
            world.gamepads[i].read(gamepadInputs[i])
        }
        if let o = odometry, !guardian.isFresh(sensorIDs[o.sensor], now: now) { world.pose = nil }
    }

    /// One step of a proposing policy: its output is kept for arbitration; if it wins its channels
    /// (no fresher output of a higher priority shares one), the filters on those channels adjust
    /// it and each value goes through the guard.
    mutating func step(_ plan: PolicyPlan, release: Instant, now: Instant, write: (ApprovedCommand) -> Void) {
        refreshWorld(at: release)
        guard let proposed = sources[plan.slot].step(world, now: release) else {
            outputs[plan.index] = nil
            return
        }
        outputs[plan.index] = (proposed, release)
        // Index loops throughout: iterating an array through its iterator (for-in, contains(where:),
        // enumerated()) allocates a coroutine frame per element in unoptimised builds.
        for k in plans.indices {
            let other = plans[k]
            guard !other.isFilter, other.index != plan.index, Self.share(other.channels, plan.channels),
                  let o = outputs[other.index], release - o.at <= other.timeout else { continue }
            if other.priority > plan.priority || (other.priority == plan.priority && other.index < plan.index) { return }
        }
        var values = proposed
        // Read per step: a policy executing a plan's step speaks as the planner (its envelope).
        let origin = sources[plan.slot].origin
        for k in plans.indices where plans[k].isFilter && plans[k].channels == plan.channels {
            if filters[plans[k].slot].filter(&values, world: world, now: release) { status.filtered += 1 }
        }
        for j in plan.channels.indices {
            let channel = plan.channels[j]
            let id = ChannelID(index: channel)
            let value: CommandValue
            if plan.discrete[j] {
                // A state is a whole number: anything else (NaN, ±∞, 0.5) is refused, never rounded.
                guard values[j].isFinite, let state = Int(exactly: values[j]) else {
                    status.verdicts.rejected += 1
                    continue
                }
                value = .discrete(state)
            } else {
                value = .continuous(values[j])
            }
            if channel < RuntimeStatus.channelCapacity {
                status.wanted[channel] = values[j]
                status.commandedBy[channel] = Int8(truncatingIfNeeded: plan.index)
            }
            let verdict = guardian.check(Command(channel: id, value: value, origin: origin, issuedAt: release,
                                                 validUntil: release + plan.lifetime), now: now)
            status.verdicts.route(verdict, to: write)
            if plan.discrete[j], case .rejected(let reason) = verdict, reason == .minOnTime || reason == .minOffTime || reason == .switchRate,
               case .discrete(let held) = guardian.currentValue(of: id) {
                // The relay may not switch yet: confirm the state it holds, so the guard's watchdog
                // and the device's own time-out see a live controller, not silence.
                let refresh = guardian.check(Command(channel: id, value: .discrete(held), origin: origin, issuedAt: release,
                                                     validUntil: release + plan.lifetime), now: now)
                if let approved = refresh.approved {
                    status.discreteRefreshes += 1
                    write(approved)
                }
            }
        }
    }

    /// Whether two policies' channel lists share a channel.
    static func share(_ a: [Int], _ b: [Int]) -> Bool {
        for i in a.indices {
            for j in b.indices where a[i] == b[j] { return true }
        }
        return false
    }

    /// A sample for a required sensor: a number (range-checked by the guard), a range frame
    /// (no echo = the sensor's maximum; a fault = no sample), wheel encoders (odometry → the pose
    /// for the workspace, wheel speeds for commanded-versus-measured), or anything else that only
    /// proves the sensor alive (an IMU frame).
    mutating func noteSample(_ sensor: Int, _ payload: Payload, rangeMaximum: Double, at release: Instant,
                             write: (ApprovedCommand) -> Void) {
        let id = sensorIDs[sensor]
        let isOdometry = odometry?.sensor == sensor
        // The odometry's sensor takes encoder frames only: anything else fed to it (a swapped
        // `feeds` entry) would keep it fresh while the pose stands still. Refused: it goes stale.
        if isOdometry, case .values(let v) = payload, v.tag == SampleTag.wheelEncoders {} else if isOdometry { return }
        switch payload {
        case .scalar(let v):
            valueSensors.insert(sensor)
            guardian.noteSensor(id, value: v, at: release, emit: write)
        case .values(let v) where v.tag == SampleTag.range:
            valueSensors.insert(sensor)
            let r = ObstacleAvoidingDrive.effectiveRange(value: v[0], status: Int(v[1]), maximum: rangeMaximum)
            guardian.noteSensor(id, value: r, at: release, emit: write)
        case .values(let v) where v.tag == SampleTag.wheelEncoders && odometry?.sensor == sensor:
            guard var o = odometry, let left = Int32(exactly: v[0]), let right = Int32(exactly: v[1]),
                  let micros = UInt32(exactly: v[2]) else { return }
            o.estimator.update(leftTicks: left, rightTicks: right, deviceTimeMicros: micros)
            odometry = o
            let e = o.estimator
            world.pose = World.Pose(x: e.x, y: e.y, yaw: e.yaw)
            status.pose = World.Pose(x: e.x, y: e.y, yaw: e.yaw)
            guardian.noteSensor(id, at: release)
            guardian.notePose(x: e.x, y: e.y, yaw: e.yaw, at: release, emit: write)
            let speeds = e.wheelSpeeds
            if o.left < RuntimeStatus.channelCapacity { status.measured[o.left] = speeds.left }
            if o.right < RuntimeStatus.channelCapacity { status.measured[o.right] = speeds.right }
            // After the first frame every frame must give a speed: one that cannot be measured is
            // no evidence of a safe wheel (the monitor treats it as a violation after its time).
            if e.updates > 0 {
                guardian.noteMeasured(ChannelID(index: o.left), value: speeds.left, at: release, emit: write)
                guardian.noteMeasured(ChannelID(index: o.right), value: speeds.right, at: release, emit: write)
            }
        case .values, .signal, .object, .none:
            // Proof of life only: never for a sensor whose value is read (it would keep a dead
            // sensor's last value fresh). Refused: that sensor goes stale, as it should.
            guard !valueSensors.contains(sensor) else { return }
            guardian.noteSensor(id, at: release)
        }
    }
}

/// What `Control.refreshLevels` reads: fixed once the runtime is built.
struct LevelSources: Sendable {
    let estops: [(input: String, signal: EStopSignal)]
    let links: [(input: String, link: InputLink)]
    let brokerLink: (@Sendable () -> Bool)?
    let actuators: ActuatorSet
    /// The e-stop devices' freshness as a sensor (their oldest frame), if configured.
    let estopDevice: SensorID?
    let startup: Duration
}

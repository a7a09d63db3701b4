import RTScheduler

/// The safety guard: every actuator command passes through `check`, and only what it approves
/// can reach an actuator. Pure logic: no I/O; `check`, `tick` and the fault entry points do not
/// allocate (per-channel state is preallocated; audit records go to a preallocated ring).
///
/// Owned by one thread (the dispatch thread): it is a value type with `mutating` methods.
/// `audit` may be drained from any thread.
public struct SafetyGuard: Sendable {
    public let configuration: GuardConfiguration
    public let audit: AuditLog
    /// This guard's identity and latch epoch: bind the actuator set to it (`ActuatorSet(seal:)`).
    public let seal: GuardSeal
    /// `seal.id`, kept so that approving touches no object.
    let sealID: UInt
    /// Latches and resets so far (mirrors `seal.epoch`; stamped on every approval).
    public internal(set) var epoch: UInt64 = 0
    /// Stop events so far: every stop trigger (including one that finds the guard already latched
    /// at the same or a stricter category, which leaves `epoch` alone) and every e-stop press. A
    /// remote reset request's latch number advances with it, so a request sent before a stop
    /// event never releases the stop state that event made.
    public internal(set) var stopEvents: UInt64 = 0

    struct ChannelState: Sendable {
        var limiter = Limiter.State.none
        var current: CommandValue
        var lastApprovedAt: Instant?
        var watchdogTripped = false
        var needsFresh = false
        /// A guard ramp toward the safe value is running (stop, hold or watchdog).
        var ramping = false
        var lastChangeAt: Instant?
        var switchTimes: [Int64]  // ring of the last state changes (ns), capacity = max switches
        var switchHead = 0
        var switchCount = 0
        /// Locked by a value interlock: safe value, commands refused, until a reset.
        var interlocked = false
        /// Commanded versus measured: since when the measurement disagrees, and which fault it tripped.
        var violationSince: Instant?
        var violationSlower = false
        var monitorTrip: FaultKind?
    }

    var channels: [ChannelState]
    /// limits[channel][origin]: the channel's limits tightened by the origin's envelope.
    let limitsByOrigin: [[ChannelLimits]]
    var sensorSeen: [Instant?]
    var sensorValue: [Double]
    var sensorStale: [Bool]
    var sensorSilent: [Bool]
    public internal(set) var latch = EStopLatch()
    /// The holds that hold every channel, not motion only: an e-stop whose level is unknown
    /// (`estop-unknown`) may be down, and a press stops every channel, so every channel ramps to
    /// its safe value and refuses commands (the heater too) — a hold: no latch, no de-energising.
    static let everyChannelHolds: UInt32 = 1 << UInt32(FaultKind.estopUnknown.rawValue)

    /// Bit per fault kind currently holding motion (and, for `everyChannelHolds`, every channel).
    public internal(set) var holdMask: UInt32 = 0
    /// Stop causes present now (levels): a reset is refused while any is present.
    public internal(set) var present: StopCauses = []
    public internal(set) var workspaceLevel: Workspace.Level = .inside
    /// Released into the workspace recovery hold: only motion back toward the workspace passes.
    public internal(set) var inRecovery = false
    var recoveryFloor = -Double.infinity
    var pose = (x: Double.nan, y: Double.nan, yaw: Double.nan)
    var startedAt: Instant?
    /// The last released reset (the latch's or an interlock's): commands issued before it never resume.
    var lastResetAt: Instant?
    var lastTick: Instant?
    let reactions: [Reaction]
    // The e-stop input and the reset key (ISO 13850 habits).
    public internal(set) var estopAsserted = false
    var estopReleasedAt: Instant?
    var estopPressesSeen: UInt64 = 0
    var resetKeyDownSince: Instant?
    // Precomputed indices (no lookups by name on the hot path).
    let interlockSensor: [Int]
    let interlockChannels: [[Int]]
    var interlockActive: [Bool]
    let wheels: (left: Int, right: Int, radius: Double)?

    public init(configuration: GuardConfiguration) throws {
        try configuration.validate()
        self.configuration = configuration
        let seal = GuardSeal()
        self.seal = seal
        sealID = seal.id
        audit = AuditLog(capacity: configuration.auditCapacity)
        channels = configuration.channels.map { c in
            // Room for the largest switch count any origin's limits allow (an envelope may set one
            // the channel's own limits leave open).
            var capacity = 0
            for limits in [c.limits] + Array(c.originLimits.values) {
                if case .discrete(let l) = limits { capacity = max(capacity, l.maxSwitchesPerMinute ?? 0) }
            }
            // Every channel starts at rest at its safe value: the first command is limited from there.
            let rest = Limiter.State(value: c.safeValue.continuousValue ?? 0, rate: 0, second: 0, samples: 3)
            return ChannelState(limiter: rest, current: c.safeValue, switchTimes: [Int64](repeating: 0, count: max(capacity, 1)))
        }
        limitsByOrigin = configuration.channels.map { c in
            CommandOrigin.allCases.map { origin -> ChannelLimits in
                guard origin != .safetyGuard, let extra = c.originLimits[origin] else { return c.limits }
                switch (c.limits, extra) {
                case (.continuous(let base), .continuous(let tighter)): return .continuous(base.tightened(by: tighter))
                case (.discrete(let base), .discrete(let tighter)): return .discrete(base.tightened(by: tighter))
                default: return c.limits
                }
            }
        }
        let sensorCount = configuration.sensors.count
        sensorSeen = Array(repeating: nil, count: sensorCount)
        sensorValue = Array(repeating: .nan, count: sensorCount)
        sensorStale = Array(repeating: false, count: sensorCount)
        sensorSilent = Array(repeating: false, count: sensorCount)
        reactions = FaultKind.allCases.map { configuration.reaction(to: $0) }
        let names = configuration.channels.map(\.name)
        interlockSensor = configuration.interlocks.map { i in configuration.sensors.firstIndex { $0.name == i.sensor } ?? 0 }
        interlockChannels = configuration.interlocks.map { i in i.channels.compactMap { names.firstIndex(of: $0) } }
        interlockActive = Array(repeating: false, count: configuration.interlocks.count)
        if let k = configuration.workspace?.kinematics, let l = names.firstIndex(of: k.leftChannel),
           let r = names.firstIndex(of: k.rightChannel) {
            wheels = (l, r, k.wheelRadius)
        } else {
            wheels = nil
        }
        if configuration.startLatched {
            // After a restart on hardware nothing moves until a deliberate reset; the actuators
            // start in their safe state, so the stop is already complete.
            _ = latch.trigger(.zero, cause: .powerOn, at: .zero)
            epoch = seal.advanceEpoch()
            audit.append(AuditRecord(at: .zero, kind: .latched, fault: .powerOn, category: .zero))
        }
    }

    public func channel(named name: String) -> ChannelID? {
        configuration.channels.firstIndex { $0.name == name }.map(ChannelID.init(index:))
    }

    public func sensor(named name: String) -> SensorID? {
        configuration.sensors.firstIndex { $0.name == name }.map(SensorID.init(index:))
    }

    /// The value a channel holds now (last approved or guard-applied).
    public func currentValue(of channel: ChannelID) -> CommandValue { channels[channel.index].current }

    public var isHolding: Bool { holdMask != 0 }

    // MARK: the check path

    /// Decides one command. Order of checks (docs/safety.md): channel known → e-stop latch →
    /// value kind and finiteness → freshness (valid-until) → fresh-after-reset → hold →
    /// per-origin limits (range, rate, acceleration, jerk; or discrete state rules).
    public mutating func check(_ command: Command, now: Instant) -> Verdict {
        let index = command.channel.index
        guard index >= 0 && index < channels.count else {
            return reject(command, .unknownChannel, now: now)
        }
        if let category = latch.category {
            let cause = latch.cause ?? .operatorRequest
            audit.append(AuditRecord(at: now, kind: .refusedWhileStopped, channel: index, origin: command.origin,
                                     sourceTag: command.sourceTag, requested: command.value.auditNumber,
                                     fault: cause, category: category))
            return .stop(category, cause)
        }
        if command.validUntil < now { return reject(command, .stale, now: now) }
        // The guard's own tick (watchdogs, levels, ramps) must be alive for anything to pass.
        if let maxAge = configuration.maxTickAge, lastTick.map({ now.nanoseconds(since: $0) > maxAge.nanoseconds }) ?? true {
            return reject(command, .guardNotTicking, now: now)
        }
        // Cleared only when a fresh command is approved (`approve`): a fresh one that is rejected
        // further down (not finite, held, wrong kind) must not let a queued pre-reset one through.
        if channels[index].needsFresh, let reset = lastResetAt, command.issuedAt < reset {
            return reject(command, .notFresh, now: now)
        }
        // Fields, not a copy of the channel's configuration: copying it retains its strings and tables.
        let isMotion = configuration.channels[index].isMotion
        if channels[index].interlocked || (!interlockChannels.isEmpty && interlockWithheld(index)) {
            return reject(command, .interlocked, now: now)
        }
        // A hold of every channel (an e-stop whose level is unknown may be pressed, and a press
        // stops every channel): nothing passes, motion or not.
        if holdMask & Self.everyChannelHolds != 0 { return reject(command, .holding, now: now) }
        var towardWorkspace = false
        if isMotion {
            // In the recovery hold (or a workspace hold), motion that brings the robot back passes.
            let workspaceBit: UInt32 = 1 << UInt32(FaultKind.workspace.rawValue)
            let workspaceOnly = holdMask == workspaceBit
            if holdMask & ~workspaceBit != 0 {
                // Any other hold (a silent sensor, say) holds recovery motion too.
                return reject(command, .holding, now: now)
            } else if inRecovery || workspaceOnly {
                // Judged on the value the limiter approves (below), not on the request.
                guard configuration.channels[index].limits.isContinuous else {
                    return reject(command, inRecovery ? .awayFromWorkspace : .holding, now: now)
                }
                towardWorkspace = true
            } else if holdMask != 0 {
                return reject(command, .holding, now: now)
            }
        }

        switch (limitsByOrigin[index][command.origin.rawValue], command.value) {
        case (.continuous(let limits), .continuous(let requested)):
            guard requested.isFinite else { return reject(command, .notFinite, now: now) }
            let elapsed = channels[index].lastApprovedAt.map { Double(now.nanoseconds(since: $0)) / 1e9 } ?? .infinity
            let dt = min(elapsed, configuration.channels[index].maxStepInterval)
            let out = Limiter.limit(requested, limits: limits, state: channels[index].limiter, dt: dt)
            // In the recovery hold, what the wheels will do must bring the robot back — or at least
            // move it out less than they do now (the rate limit may not allow a full reversal at once).
            if towardWorkspace && !improvesApproach(index, to: out.value) {
                return reject(command, inRecovery ? .awayFromWorkspace : .holding, now: now)
            }
            channels[index].limiter = out.state
            let approved = approve(command, value: .continuous(out.value), now: now)
            if towardWorkspace {
                audit.append(AuditRecord(at: now, kind: .recoveryCommand, channel: index, origin: command.origin,
                                         sourceTag: command.sourceTag, requested: requested, approved: out.value))
            }
            if out.reasons.isEmpty { return .pass(approved) }
            audit.append(AuditRecord(at: now, kind: .clamped, channel: index, origin: command.origin,
                                     sourceTag: command.sourceTag, requested: requested, approved: out.value,
                                     clampReasons: out.reasons))
            return .clamped(approved, out.reasons)
        case (.discrete(let limits), .discrete(let requested)):
            if let reason = discreteViolation(index, requested: requested, limits: limits, now: now) {
                return reject(command, reason, now: now)
            }
            noteStateChange(index, to: requested, now: now)
            return .pass(approve(command, value: .discrete(requested), now: now))
        default:
            return reject(command, .wrongValueKind, now: now)
        }
    }

    private mutating func approve(_ command: Command, value: CommandValue, now: Instant) -> ApprovedCommand {
        channels[command.channel.index].current = value
        channels[command.channel.index].lastApprovedAt = now
        channels[command.channel.index].watchdogTripped = false
        channels[command.channel.index].ramping = false
        channels[command.channel.index].needsFresh = false
        // Every approval expires, whatever the proposer asked for: none can be replayed much later.
        let validUntil = min(command.validUntil, now + configuration.maxApprovalValidity)
        return ApprovedCommand(approving: command, value: value, at: now, validUntil: validUntil, guardID: sealID, epoch: epoch)
    }

    func reject(_ command: Command, _ reason: RejectReason, now: Instant) -> Verdict {
        audit.append(AuditRecord(at: now, kind: .rejected, channel: command.channel.index, origin: command.origin,
                                 sourceTag: command.sourceTag, requested: command.value.auditNumber, rejectReason: reason))
        return .rejected(reason)
    }

    private func discreteViolation(_ index: Int, requested: Int, limits: DiscreteLimits, now: Instant) -> RejectReason? {
        guard limits.allows(requested) else { return .stateNotAllowed }
        let state = channels[index]
        guard case .discrete(let current) = state.current, current != requested else { return nil }
        if let since = state.lastChangeAt {
            let held = now.nanoseconds(since: since)
            if current != 0, let minOn = limits.minOnTime, held < minOn.nanoseconds { return .minOnTime }
            if current == 0, let minOff = limits.minOffTime, held < minOff.nanoseconds { return .minOffTime }
        }
        if let maxSwitches = limits.maxSwitchesPerMinute, state.switchCount >= maxSwitches {
            // The oldest of the last `maxSwitches` changes must be a minute old (the ring may hold
            // more changes than this origin's limit counts).
            let capacity = state.switchTimes.count
            let oldest = state.switchTimes[(state.switchHead + state.switchCount - maxSwitches) % capacity]
            if now.nanoseconds - oldest < 60_000_000_000 { return .switchRate }
        }
        return nil
    }

    private mutating func noteStateChange(_ index: Int, to state: Int, now: Instant) {
        guard case .discrete(let current) = channels[index].current, current != state else { return }
        channels[index].lastChangeAt = now
        let capacity = channels[index].switchTimes.count
        if channels[index].switchCount < capacity {
            channels[index].switchTimes[(channels[index].switchHead + channels[index].switchCount) % capacity] = now.nanoseconds
            channels[index].switchCount += 1
        } else {
            channels[index].switchTimes[channels[index].switchHead] = now.nanoseconds
            channels[index].switchHead = (channels[index].switchHead + 1) % capacity
        }
    }

    /// An actuator back end put `channel` in its safe state on its own (started, or reactivated
    /// after a fault or a reconnect): the channel is at its safe value and de-energised, whatever
    /// the guard last approved. Without this, a stop ramp still running in the guard would
    /// re-energise a reconnected motor, and the limiter would allow a step from a speed the wheel
    /// no longer has. Deliver it before the back end accepts commands again (on the same thread as
    /// `check` and `tick`).
    /// `replacing`: when the writer put the safe value in place of (or right after) an approval,
    /// that approval's instant. The notice is then applied only if the guard has approved or emitted
    /// nothing for the channel since: a later guard command (a ramp step, say) is on its way to the
    /// actuator and supersedes the safe value, and the guard must keep tracking it.
    public mutating func noteSafeStateApplied(to channel: ChannelID, at instant: Instant, replacing approvedAt: Instant? = nil) {
        let i = channel.index
        guard i >= 0 && i < channels.count else { return }
        if let approvedAt, let last = channels[i].lastApprovedAt, last > approvedAt { return }
        let safe = configuration.channels[i].safeValue
        switch safe {
        case .continuous(let v): channels[i].limiter = Limiter.State(value: v, rate: 0, second: 0, samples: 3)
        case .discrete(let s): noteStateChange(i, to: s, now: instant)
        }
        channels[i].current = safe
        channels[i].lastApprovedAt = instant
        audit.append(AuditRecord(at: instant, kind: .deenergized, channel: i, approved: safe.auditNumber))
        // A latched stop whose channels are now all at safe finishes at the next `tick`, which also
        // sends a category-1 stop's de-energise to every channel.
    }

    mutating func setHold(_ kind: FaultKind, _ on: Bool, at instant: Instant, emit: (ApprovedCommand) -> Void = { _ in }) {
        let bit: UInt32 = 1 << UInt32(kind.rawValue)
        let was = holdMask
        if on { holdMask |= bit } else { holdMask &= ~bit }
        let everyChannel = holdMask & Self.everyChannelHolds != 0
        let everyChannelBefore = was & Self.everyChannelHolds != 0
        // Each kind's hold is recorded as it comes and goes, whatever else holds.
        if holdMask != was { audit.append(AuditRecord(at: instant, kind: on ? .hold : .holdReleased, fault: kind)) }
        // The first hold ramps motion to safe; the first hold of every channel ramps every channel
        // (a motion hold may be on already: the heater goes safe then).
        if (was == 0 && holdMask != 0) || (everyChannel && !everyChannelBefore) {
            for i in channels.indices where (everyChannel || configuration.channels[i].isMotion) && !channels[i].ramping {
                channels[i].ramping = true
                channels[i].lastApprovedAt = instant
            }
            advanceRamps(at: instant, emit: emit)
        }
    }

    /// Moves every ramping channel one step toward its safe value (at its stop rate), emitting
    /// each step. When a latched stop has brought every channel to safe, the latch records it
    /// and a category-1 stop de-energises.
    mutating func advanceRamps(at now: Instant, emit: (ApprovedCommand) -> Void) {
        var allSafe = true
        for i in channels.indices where channels[i].ramping {
            let config = configuration.channels[i]
            switch (channels[i].current, config.safeValue) {
            case (.continuous(let value), .continuous(let safe)):
                if value == safe { continue }
                // A channel stopped with category 0 (the latch's or its own) is already at safe,
                // de-energised: it is never ramped.
                let strict = latch.category.map { config.stopCategory(under: $0) == .zero } ?? false
                guard let rate = config.effectiveStopRate, let last = channels[i].lastApprovedAt, !strict else {
                    applySafe(i, at: now, deenergize: strict, emit: emit)
                    continue
                }
                let dt = Double(max(0, now.nanoseconds(since: last))) / 1e9
                let step = rate * dt
                let next = value > safe ? max(safe, value - step) : min(safe, value + step)
                if next != value {
                    emitGuard(i, .continuous(next), at: now, deenergize: false, emit: emit)
                }
                if next != safe { allSafe = false }
            case (let current, let safe):
                if current != safe { applySafe(i, at: now, deenergize: false, emit: emit) }
            }
        }
        if case .stopping(let category, _, _) = latch.state, allSafe {
            latch.rampFinished(at: now)
            // De-energise what stops with category 1 (the latch's, or a channel's own under a
            // category-2 latch); category-2 channels keep power.
            var deenergized = false
            for i in channels.indices where configuration.channels[i].stopCategory(under: category) <= .one {
                if !deenergized { audit.append(AuditRecord(at: now, kind: .deenergized)) }
                deenergized = true
                emitGuard(i, configuration.channels[i].safeValue, at: now, deenergize: true, emit: emit)
            }
        }
    }

    mutating func applySafe(_ i: Int, at now: Instant, deenergize: Bool, emit: (ApprovedCommand) -> Void) {
        emitGuard(i, configuration.channels[i].safeValue, at: now, deenergize: deenergize, emit: emit)
    }

    mutating func emitGuard(_ i: Int, _ value: CommandValue, at now: Instant, deenergize: Bool,
                                    emit: (ApprovedCommand) -> Void) {
        if case .continuous(let v) = value {
            // The limiter continues from what the guard applied, so the next command is
            // rate-limited from here, not from the last policy command.
            let previous = channels[i].limiter
            let dt = channels[i].lastApprovedAt.map { Double(max(0, now.nanoseconds(since: $0))) / 1e9 } ?? 0
            let rate = dt > 0 ? (v - previous.value) / dt : 0
            // Reaching the safe value means at rest (the ramp or the stop ended there).
            let atSafe = value == configuration.channels[i].safeValue
            channels[i].limiter = atSafe ? Limiter.State(value: v, rate: 0, second: 0, samples: 3)
                                         : Limiter.State(value: v, rate: rate, second: 0, samples: 3)
        }
        if case .discrete(let s) = value { noteStateChange(i, to: s, now: now) }
        channels[i].current = value
        channels[i].lastApprovedAt = now
        emit(ApprovedCommand(channel: ChannelID(index: i), value: value, origin: .safetyGuard, sourceTag: 0,
                             issuedAt: now, validUntil: now + configuration.guardCommandValidity, approvedAt: now,
                             deenergize: deenergize, guardID: sealID, epoch: epoch))
    }
}

extension CommandValue {
    var auditNumber: Double {
        switch self {
        case .continuous(let v): v
        case .discrete(let s): Double(s)
        }
    }
}

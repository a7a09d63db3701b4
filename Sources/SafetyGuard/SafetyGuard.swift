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
    public let seal = GuardSeal()
    /// Latches so far (mirrors `seal.epoch`; stamped on every approval).
    public private(set) var epoch: UInt64 = 0

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
    }

    private var channels: [ChannelState]
    /// limits[channel][origin]: the channel's limits tightened by the origin's envelope.
    private let limitsByOrigin: [[ChannelLimits]]
    private var sensorSeen: [Instant?]
    private var sensorStale: [Bool]
    public private(set) var latch = EStopLatch()
    /// Bit per fault kind currently holding motion.
    public private(set) var holdMask: UInt32 = 0
    public private(set) var workspaceLevel: Workspace.Level = .inside
    private var lastTick: Instant?
    private let reactions: [Reaction]

    public init(configuration: GuardConfiguration) throws {
        try configuration.validate()
        self.configuration = configuration
        audit = AuditLog(capacity: configuration.auditCapacity, filler: .filler)
        channels = configuration.channels.map { c in
            var capacity = 0
            if case .discrete(let l) = c.limits { capacity = l.maxSwitchesPerMinute ?? 0 }
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
        sensorSeen = Array(repeating: nil, count: configuration.sensors.count)
        sensorStale = Array(repeating: false, count: configuration.sensors.count)
        reactions = FaultKind.allCases.map { configuration.reaction(to: $0) }
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
        if channels[index].needsFresh {
            if let reset = latch.lastReset, command.issuedAt < reset { return reject(command, .notFresh, now: now) }
            channels[index].needsFresh = false
        }
        let config = configuration.channels[index]
        if holdMask != 0 && config.isMotion { return reject(command, .holding, now: now) }

        switch (limitsByOrigin[index][command.origin.rawValue], command.value) {
        case (.continuous(let limits), .continuous(let requested)):
            guard requested.isFinite else { return reject(command, .notFinite, now: now) }
            let elapsed = channels[index].lastApprovedAt.map { Double(now.nanoseconds(since: $0)) / 1e9 } ?? .infinity
            let dt = min(elapsed, config.maxStepInterval)
            let out = Limiter.limit(requested, limits: limits, state: channels[index].limiter, dt: dt)
            channels[index].limiter = out.state
            let approved = approve(command, value: .continuous(out.value), now: now)
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
        return ApprovedCommand(approving: command, value: value, at: now, seal: seal, epoch: epoch)
    }

    private func reject(_ command: Command, _ reason: RejectReason, now: Instant) -> Verdict {
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
            // The oldest of the last `maxSwitches` changes must be a minute old.
            let oldest = state.switchTimes[state.switchHead]
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

    // MARK: inputs to the guard

    /// A required sensor delivered a sample.
    public mutating func noteSensor(_ sensor: SensorID, at instant: Instant) {
        guard sensor.index >= 0 && sensor.index < sensorSeen.count else { return }
        sensorSeen[sensor.index] = instant
    }

    /// A new pose estimate (odom frame, metres). Applies the workspace ladder at once.
    public mutating func notePose(x: Double, y: Double, at instant: Instant, emit: (ApprovedCommand) -> Void) {
        guard let workspace = configuration.workspace else { return }
        let level = x.isFinite && y.isFinite ? workspace.level(x: x, y: y) : .stop
        guard level != workspaceLevel else { return }
        let previous = workspaceLevel
        workspaceLevel = level
        switch level {
        case .inside:
            setHold(.workspace, false, at: instant)
        case .warn:
            setHold(.workspace, false, at: instant)
            if previous < .warn { audit.append(AuditRecord(at: instant, kind: .warn, fault: .workspace)) }
        case .hold:
            setHold(.workspace, true, at: instant, emit: emit)
        case .stop:
            trigger(.workspace, category: workspace.stopCategory, at: instant, emit: emit)
        }
    }

    /// An actuator back end put `channel` in its safe state on its own (started, or reactivated
    /// after a fault or a reconnect): the channel is at its safe value and de-energised, whatever
    /// the guard last approved. Without this, a stop ramp still running in the guard would
    /// re-energise a reconnected motor, and the limiter would allow a step from a speed the wheel
    /// no longer has. Deliver it before the back end accepts commands again (on the same thread as
    /// `check` and `tick`).
    public mutating func noteSafeStateApplied(to channel: ChannelID, at instant: Instant) {
        let i = channel.index
        guard i >= 0 && i < channels.count else { return }
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

    /// A scheduler deadline fault (a critical loop kept missing).
    public mutating func handle(_ fault: DeadlineFault, emit: (ApprovedCommand) -> Void) {
        trigger(.deadlineFault, at: fault.at, emit: emit)
    }

    /// A fault with its configured reaction.
    public mutating func trigger(_ kind: FaultKind, at instant: Instant, emit: (ApprovedCommand) -> Void) {
        switch reactions[kind.rawValue] {
        case .warn: audit.append(AuditRecord(at: instant, kind: .warn, fault: kind))
        case .hold: setHold(kind, true, at: instant, emit: emit)
        case .stop(let category): trigger(kind, category: category, at: instant, emit: emit)
        }
    }

    /// Latches the e-stop with an explicit category (an e-stop button, an operator request).
    public mutating func trigger(_ kind: FaultKind, category: StopCategory, at instant: Instant,
                                 emit: (ApprovedCommand) -> Void) {
        audit.append(AuditRecord(at: instant, kind: .fault, fault: kind, category: category))
        switch latch.trigger(category, cause: kind, at: instant) {
        case .alreadyLatched: return
        case .latched, .escalated:
            // Everything approved before this instant is void at the actuators from now on.
            epoch = seal.advanceEpoch()
            audit.append(AuditRecord(at: instant, kind: .latched, fault: kind, category: category))
        }
        for i in channels.indices where !channels[i].ramping {
            channels[i].ramping = true
            channels[i].lastApprovedAt = instant  // the ramp starts now, not at the last command
        }
        if category == .zero {
            for i in channels.indices { applySafe(i, at: instant, deenergize: true, emit: emit) }
        } else {
            advanceRamps(at: instant, emit: emit)
        }
    }

    /// Releases a stopped latch. Every channel then needs a fresh command issued after this
    /// instant: nothing queued or latched before the stop resumes by itself. Refused while a
    /// stop ramp is still running.
    public mutating func reset(at instant: Instant) -> EStopLatch.ResetOutcome {
        let outcome = latch.reset(at: instant)
        if outcome == .released {
            audit.append(AuditRecord(at: instant, kind: .reset))
            for i in channels.indices {
                channels[i].needsFresh = true
                channels[i].ramping = false
                // The watchdog restarts from the reset: a channel with no fresh command stays safe.
                channels[i].lastApprovedAt = instant
                channels[i].watchdogTripped = true
            }
        }
        return outcome
    }

    // MARK: time-driven checks

    /// Call every control cycle (a periodic task). Checks sensor staleness and command
    /// watchdogs, and advances stop/hold ramps; guard-made commands go to `emit`.
    public mutating func tick(now: Instant, emit: (ApprovedCommand) -> Void) {
        for s in configuration.sensors.indices {
            let sensor = configuration.sensors[s]
            let age = sensorSeen[s].map { now.nanoseconds(since: $0) } ?? now.nanoseconds(since: .zero)
            let stale = sensorSeen[s] == nil ? false : age > sensor.maxAge.nanoseconds
            if stale && !sensorStale[s] {
                sensorStale[s] = true
                switch sensor.reaction {
                case .warn: audit.append(AuditRecord(at: now, kind: .warn, fault: .staleSensor))
                case .hold: setHold(.staleSensor, true, at: now, emit: emit)
                case .stop(let category): trigger(.staleSensor, category: category, at: now, emit: emit)
                }
            } else if !stale && sensorStale[s] {
                sensorStale[s] = false
                if sensor.reaction == .hold && !sensorStale.contains(true) { setHold(.staleSensor, false, at: now) }
            }
        }
        if !latch.isLatched {
            for i in channels.indices {
                guard let timeout = configuration.channels[i].watchdogTimeout, !channels[i].watchdogTripped,
                      let last = channels[i].lastApprovedAt,
                      now.nanoseconds(since: last) > timeout.nanoseconds else { continue }
                channels[i].watchdogTripped = true
                channels[i].ramping = true
                channels[i].lastApprovedAt = last.advanced(byNanoseconds: timeout.nanoseconds)  // ramp from expiry
                audit.append(AuditRecord(at: now, kind: .watchdog, channel: i, approved: configuration.channels[i].safeValue.auditNumber,
                                         fault: .commandWatchdog))
                if case .warn = reactions[FaultKind.commandWatchdog.rawValue] {} else {
                    trigger(.commandWatchdog, at: now, emit: emit)
                }
            }
        }
        advanceRamps(at: now, emit: emit)
        lastTick = now
    }

    private mutating func setHold(_ kind: FaultKind, _ on: Bool, at instant: Instant, emit: (ApprovedCommand) -> Void = { _ in }) {
        let bit: UInt32 = 1 << UInt32(kind.rawValue)
        let was = holdMask
        if on { holdMask |= bit } else { holdMask &= ~bit }
        if was == 0 && holdMask != 0 {
            audit.append(AuditRecord(at: instant, kind: .hold, fault: kind))
            for i in channels.indices where configuration.channels[i].isMotion && !channels[i].ramping {
                channels[i].ramping = true
                channels[i].lastApprovedAt = instant
            }
            advanceRamps(at: instant, emit: emit)
        } else if was != 0 && holdMask == 0 {
            audit.append(AuditRecord(at: instant, kind: .holdReleased, fault: kind))
        }
    }

    /// Moves every ramping channel one step toward its safe value (at its stop rate), emitting
    /// each step. When a latched stop has brought every channel to safe, the latch records it
    /// and a category-1 stop de-energises.
    private mutating func advanceRamps(at now: Instant, emit: (ApprovedCommand) -> Void) {
        var allSafe = true
        for i in channels.indices where channels[i].ramping {
            let config = configuration.channels[i]
            switch (channels[i].current, config.safeValue) {
            case (.continuous(let value), .continuous(let safe)):
                if value == safe { continue }
                guard let rate = config.effectiveStopRate, let last = channels[i].lastApprovedAt,
                      latch.category != .zero else {
                    applySafe(i, at: now, deenergize: false, emit: emit)
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
            if category == .one {
                audit.append(AuditRecord(at: now, kind: .deenergized))
                for i in channels.indices { emitGuard(i, configuration.channels[i].safeValue, at: now, deenergize: true, emit: emit) }
            }
        }
    }

    private mutating func applySafe(_ i: Int, at now: Instant, deenergize: Bool, emit: (ApprovedCommand) -> Void) {
        emitGuard(i, configuration.channels[i].safeValue, at: now, deenergize: deenergize, emit: emit)
    }

    private mutating func emitGuard(_ i: Int, _ value: CommandValue, at now: Instant, deenergize: Bool,
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
                             deenergize: deenergize, guardID: seal.id, epoch: epoch))
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

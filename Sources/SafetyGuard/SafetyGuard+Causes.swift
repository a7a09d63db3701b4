import RTScheduler
#if canImport(Glibc)
import Glibc
#endif

/// Stop causes as levels (docs/safety.md, "Fail closed"): each is re-evaluated on every tick and
/// on every input that can change it; a cause present while running latches at once; a reset is
/// refused while any is present. None of these allocate.
extension SafetyGuard {
    // MARK: faults and levels

    /// A scheduler deadline fault (a critical loop kept missing). A level until
    /// `setCause(.deadlineFault, present: false, …)` says the streak is broken.
    public mutating func handle(_ fault: DeadlineFault, emit: (ApprovedCommand) -> Void) {
        setCause(.deadlineFault, present: true, at: fault.at, emit: emit)
    }

    /// A fault event with its configured reaction (latches until a reset; not a level).
    public mutating func trigger(_ kind: FaultKind, at instant: Instant, emit: (ApprovedCommand) -> Void) {
        switch reactions[kind.rawValue] {
        case .warn: audit.append(AuditRecord(at: instant, kind: .warn, fault: kind))
        case .hold: setHold(kind, true, at: instant, emit: emit)
        case .stop(let category): trigger(kind, category: category, at: instant, emit: emit)
        }
    }

    /// Latches the e-stop with an explicit category (an operator request, a remote stop).
    public mutating func trigger(_ kind: FaultKind, category: StopCategory, at instant: Instant,
                                 emit: (ApprovedCommand) -> Void) {
        audit.append(AuditRecord(at: instant, kind: .fault, fault: kind, category: category))
        stopEvents &+= 1
        switch latch.trigger(category, cause: kind, at: instant) {
        case .alreadyLatched: return
        case .latched, .escalated:
            // Everything approved before this instant is void at the actuators from now on.
            epoch = seal.advanceEpoch()
            audit.append(AuditRecord(at: instant, kind: .latched, fault: kind, category: category))
        }
        inRecovery = false
        for i in channels.indices where !channels[i].ramping {
            channels[i].ramping = true
            channels[i].lastApprovedAt = instant  // the ramp starts now, not at the last command
        }
        // Channels whose own category is 0 lose power at once whatever the latch's category.
        for i in channels.indices where configuration.channels[i].stopCategory(under: category) == .zero {
            applySafe(i, at: instant, deenergize: true, emit: emit)
        }
        if category != .zero { advanceRamps(at: instant, emit: emit) }
    }

    /// An externally observed condition as a level: a lost actuator link (`connection-lost`,
    /// `actuator-failure`), a lost e-stop device, a deadline-fault streak. Present → its reaction
    /// at once (a stop latches; a hold holds while present); a reset is refused while a stop cause
    /// is present; absent again → recorded, and a reset may release.
    public mutating func setCause(_ kind: FaultKind, present on: Bool, at instant: Instant, emit: (ApprovedCommand) -> Void) {
        setLevel(kind, on, reaction: reactions[kind.rawValue], at: instant, emit: emit)
    }

    mutating func setLevel(_ kind: FaultKind, _ on: Bool, reaction: Reaction, at instant: Instant,
                           emit: (ApprovedCommand) -> Void) {
        let bit = StopCauses(kind)
        switch reaction {
        case .warn:
            if on && !present.contains(bit) { audit.append(AuditRecord(at: instant, kind: .warn, fault: kind)) }
            if on { present.insert(bit) } else { present.remove(bit) }
            return
        case .hold:
            setHold(kind, on, at: instant, emit: emit)
            return
        case .stop(let category):
            if on {
                let rising = !present.contains(bit)
                present.insert(bit)
                if rising { stopEvents &+= 1 }
                let before = epoch
                ensureLatched(kind, category: category, at: instant, emit: emit)
                // Already latched for another cause: this one is still recorded when it appears.
                if rising && epoch == before { audit.append(AuditRecord(at: instant, kind: .fault, fault: kind, category: category)) }
            } else if present.contains(bit) {
                present.remove(bit)
                audit.append(AuditRecord(at: instant, kind: .causeCleared, fault: kind, causes: present))
            }
        }
    }

    /// Latches for a present cause unless already latched at least as severely. In the recovery
    /// hold, a persisting workspace stop is what the recovery is for.
    mutating func ensureLatched(_ kind: FaultKind, category: StopCategory, at instant: Instant,
                                emit: (ApprovedCommand) -> Void) {
        if kind == .workspace && inRecovery { return }
        if let current = latch.category, current <= category { return }
        trigger(kind, category: category, at: instant, emit: emit)
    }

    /// The instant of the first tick (the start the startup timeout counts from).
    public var firstTick: Instant? { startedAt }

    /// The stop causes that block a reset (levels with a stop reaction, value interlocks).
    public var blockingCauses: StopCauses {
        var causes = present
        // Warn-only levels are recorded in `present` for telemetry but never block.
        // By raw value: `allCases` builds an array on every call.
        for raw in reactions.indices where reactions[raw] == .warn { causes.remove(StopCauses(rawValue: 1 << UInt32(raw))) }
        if interlockActive.contains(true) { causes.insert(StopCauses(.valueInterlock)) }
        return causes
    }

    // MARK: the e-stop and the reset key

    /// What the e-stop input thread left for the guard: whether the button is held now, and how
    /// many presses it has seen (a sticky counter: a press and release between two ticks still
    /// latches). Call every guard tick, before `tick`.
    /// `releasedAt`: when the input thread saw the e-stop's last release (its arrival), so that
    /// "the reset key was down when the e-stop was released" compares arrivals, not this tick's time.
    public mutating func observeEStop(asserted: Bool, presses: UInt64, releasedAt: Instant? = nil, at instant: Instant,
                                      emit: (ApprovedCommand) -> Void) {
        let category: StopCategory = if case .stop(let c) = reactions[FaultKind.emergencyStopInput.rawValue] { c } else { .zero }
        if presses != estopPressesSeen {
            estopPressesSeen = presses
            // A press while already latched changes no epoch, but it is a stop event all the same.
            stopEvents &+= 1
            ensureLatched(.emergencyStopInput, category: category, at: instant, emit: emit)
            // A press seen only by its count was released again before this tick.
            if !asserted { estopReleasedAt = releasedAt ?? instant }
        }
        if asserted != estopAsserted {
            estopAsserted = asserted
            if !asserted { estopReleasedAt = releasedAt ?? instant }
            setLevel(.emergencyStopInput, asserted, reaction: .stop(category), at: instant, emit: emit)
        }
    }

    /// The reset key (ISO 13849-1 practice: reset on the key's release edge). Returns the reset's
    /// outcome on a release edge, nil otherwise. Refused if the key was already down when the
    /// e-stop was released: a reset needs its own deliberate action.
    public mutating func resetKey(down: Bool, at instant: Instant) -> ResetOutcome? {
        if down {
            if resetKeyDownSince == nil { resetKeyDownSince = instant }
            return nil
        }
        guard let since = resetKeyDownSince else { return nil }
        resetKeyDownSince = nil
        if let released = estopReleasedAt, since <= released, latch.isLatched {
            audit.append(AuditRecord(at: instant, kind: .resetRefused, fault: .emergencyStopInput, causes: blockingCauses))
            return .resetKeyHeldThrough
        }
        return reset(at: instant)
    }

    /// Releases a stopped latch (and channels locked by an interlock that has cleared). Refused,
    /// with the causes in the outcome and the audit, while any stop cause persists — except a
    /// workspace stop alone, which releases into the recovery hold. Every channel then needs a
    /// fresh command issued after this instant. Refused while a stop ramp is still running.
    public mutating func reset(at instant: Instant) -> ResetOutcome {
        let locked = channels.contains { $0.interlocked }
        guard latch.isLatched || locked else { return .notLatched }
        if case .stopping = latch.state { return .stillStopping }
        // Sensor levels as they stand now: `tick` evaluates them once a cycle, and a sensor that went
        // stale since the last tick must not be released by a reset in between.
        let blocking = blockingCauses.union(sensorStopCauses(at: instant))
        let workspaceOnly = blocking == StopCauses(.workspace)
        if !blocking.isEmpty && !workspaceOnly {
            audit.append(AuditRecord(at: instant, kind: .resetRefused, fault: latch.cause, causes: blocking))
            return .refused(blocking)
        }
        if latch.isLatched { _ = latch.reset(at: instant) }
        lastResetAt = instant
        // A reset starts a new epoch too: nothing approved before it (a guard ramp step, say) may
        // reach an actuator after it; every channel needs a fresh approval.
        epoch = seal.advanceEpoch()
        for i in channels.indices {
            channels[i].interlocked = false
            channels[i].needsFresh = true
            // A reset with no latch (an interlock's lock released) may find channels driven or
            // ramping. A ramp that runs (a hold's, a watchdog's) runs on, and a channel a hold
            // still holds ramps: ended mid-ramp, it would stay at that speed, every command
            // refused by the hold.
            let atSafe = channels[i].current == configuration.channels[i].safeValue
            let held = holdMask & Self.everyChannelHolds != 0 || (holdMask != 0 && configuration.channels[i].isMotion)
            channels[i].ramping = !atSafe && (channels[i].ramping || held)
            // The watchdog restarts from the reset: a channel at safe waits for a fresh command;
            // one not at safe stays watched (its policy gone, it ramps to safe at the timeout).
            channels[i].lastApprovedAt = instant
            channels[i].watchdogTripped = atSafe
        }
        if workspaceOnly, let workspace = configuration.workspace {
            inRecovery = true
            recoveryFloor = workspace.signedDistance(x: pose.x, y: pose.y) - workspace.recoveryTolerance
            audit.append(AuditRecord(at: instant, kind: .resetIntoRecovery, fault: .workspace, causes: blocking))
            return .releasedIntoRecovery
        }
        audit.append(AuditRecord(at: instant, kind: .reset))
        return .released
    }

    // MARK: sensors

    /// The stop causes of required sensors at `instant` (stale, or silent past the startup timeout),
    /// computed without side effects.
    func sensorStopCauses(at instant: Instant) -> StopCauses {
        var causes: StopCauses = []
        let pastStartup = startedAt.map { instant.nanoseconds(since: $0) > configuration.startupTimeout.nanoseconds } ?? false
        for s in configuration.sensors.indices {
            guard case .stop = configuration.sensors[s].reaction else { continue }
            if let seen = sensorSeen[s] {
                if instant.nanoseconds(since: seen) > configuration.sensors[s].maxAge.nanoseconds { causes.insert(StopCauses(.staleSensor)) }
            } else if pastStartup {
                causes.insert(StopCauses(.silentSensor))
            }
        }
        return causes
    }

    /// A required sensor delivered a sample (one whose value was validated by its decoder).
    public mutating func noteSensor(_ sensor: SensorID, at instant: Instant) {
        guard sensor.index >= 0 && sensor.index < sensorSeen.count else { return }
        sensorSeen[sensor.index] = instant
    }

    /// A required sensor delivered a value. Not finite or outside the sensor's valid range: no
    /// sample (audited, and the sensor ages as if nothing came). Returns whether it counted.
    @discardableResult
    public mutating func noteSensor(_ sensor: SensorID, value: Double, at instant: Instant, emit: (ApprovedCommand) -> Void) -> Bool {
        let s = sensor.index
        guard s >= 0 && s < sensorSeen.count else { return false }
        guard value.isFinite, configuration.sensors[s].validRange?.contains(value) ?? true else {
            audit.append(AuditRecord(at: instant, kind: .sampleRejected, channel: s, requested: value, fault: .invalidSample))
            return false
        }
        sensorSeen[s] = instant
        sensorValue[s] = value
        checkInterlocks(at: instant, emit: emit)
        return true
    }

    /// The latest valid value of a sensor if it is fresh (reported within its max age), else nil:
    /// unknown, which policies must treat as blocked.
    public func freshValue(of sensor: SensorID, now: Instant) -> Double? {
        let s = sensor.index
        guard s >= 0 && s < sensorSeen.count, let seen = sensorSeen[s],
              now.nanoseconds(since: seen) <= configuration.sensors[s].maxAge.nanoseconds else { return nil }
        return sensorValue[s]
    }

    /// Whether a sensor has reported within its max age.
    public func isFresh(_ sensor: SensorID, now: Instant) -> Bool {
        let s = sensor.index
        guard s >= 0 && s < sensorSeen.count, let seen = sensorSeen[s] else { return false }
        return now.nanoseconds(since: seen) <= configuration.sensors[s].maxAge.nanoseconds
    }

    mutating func checkSensors(now: Instant, emit: (ApprovedCommand) -> Void) {
        let start = startedAt ?? now
        let pastStartup = now.nanoseconds(since: start) > configuration.startupTimeout.nanoseconds
        var silentStop: StopCategory?
        var staleStop: StopCategory?
        var holdSilent = false
        var holdStale = false
        for s in configuration.sensors.indices {
            let sensor = configuration.sensors[s]
            let silent = sensorSeen[s] == nil
            let stale = sensorSeen[s].map { now.nanoseconds(since: $0) > sensor.maxAge.nanoseconds } ?? false
            if silent && !pastStartup {
                if sensor.reaction != .warn { holdSilent = true }  // held, not latched, until it reports
                continue
            }
            if silent != sensorSilent[s] || stale != sensorStale[s], silent || stale, sensor.reaction == .warn {
                audit.append(AuditRecord(at: now, kind: .warn, channel: s, fault: silent ? .silentSensor : .staleSensor))
            }
            sensorSilent[s] = silent
            sensorStale[s] = stale
            switch sensor.reaction {
            case .warn: break
            case .hold:
                if silent { holdSilent = true }
                if stale { holdStale = true }
            case .stop(let category):
                if silent { silentStop = min(silentStop ?? category, category) }
                if stale { staleStop = min(staleStop ?? category, category) }
            }
        }
        setHold(.silentSensor, holdSilent, at: now, emit: emit)
        setHold(.staleSensor, holdStale, at: now, emit: emit)
        setLevel(.silentSensor, silentStop != nil, reaction: .stop(silentStop ?? .one), at: now, emit: emit)
        setLevel(.staleSensor, staleStop != nil, reaction: .stop(staleStop ?? .one), at: now, emit: emit)
    }

    // MARK: value interlocks

    /// An interlock's channels are withheld (commands refused, not locked) while its sensor has
    /// not reported yet: no reading is not a safe reading.
    func interlockWithheld(_ channel: Int) -> Bool {
        for k in interlockChannels.indices where sensorSeen[interlockSensor[k]] == nil {
            if interlockChannels[k].contains(channel) { return true }
        }
        return false
    }

    mutating func checkInterlocks(at now: Instant, emit: (ApprovedCommand) -> Void) {
        for k in configuration.interlocks.indices {
            let s = interlockSensor[k]
            guard let seen = sensorSeen[s] else { continue }
            let stale = now.nanoseconds(since: seen) > configuration.sensors[s].maxAge.nanoseconds
            let violated = stale || configuration.interlocks[k].violated(by: sensorValue[s])
            guard violated != interlockActive[k] else { continue }
            interlockActive[k] = violated
            audit.append(AuditRecord(at: now, kind: .interlocked, channel: s, requested: sensorValue[s],
                                     fault: .valueInterlock, causes: violated ? StopCauses(.valueInterlock) : []))
            guard violated else { continue }
            for i in interlockChannels[k] {
                channels[i].interlocked = true
                channels[i].ramping = true
                applySafe(i, at: now, deenergize: true, emit: emit)
            }
        }
    }

    // MARK: workspace and recovery

    /// A new pose estimate (odom frame, metres; yaw in rad, NaN if unknown). The workspace ladder
    /// is a level: beyond the stop distance is a stop cause for as long as the pose stays there.
    public mutating func notePose(x: Double, y: Double, yaw: Double = .nan, at instant: Instant, emit: (ApprovedCommand) -> Void) {
        guard let workspace = configuration.workspace else { return }
        pose = (x, y, yaw)
        let level = x.isFinite && y.isFinite ? workspace.level(x: x, y: y) : .stop
        if inRecovery {
            let distance = x.isFinite && y.isFinite ? workspace.signedDistance(x: x, y: y) : -.infinity
            if level <= .warn {
                inRecovery = false
                audit.append(AuditRecord(at: instant, kind: .recoveryEnded, fault: .workspace))
            } else if distance < recoveryFloor {
                // Further out than where the recovery started: latch again.
                inRecovery = false
            } else {
                recoveryFloor = max(recoveryFloor, distance - workspace.recoveryTolerance)
            }
        }
        let previous = workspaceLevel
        workspaceLevel = level
        if level == .warn && previous < .warn { audit.append(AuditRecord(at: instant, kind: .warn, fault: .workspace)) }
        setHold(.workspace, level == .hold && !inRecovery, at: instant, emit: emit)
        setLevel(.workspace, level == .stop, reaction: .stop(workspace.stopCategory), at: instant, emit: emit)
    }

    /// The speed (m/s) at which the wheels bring the robot back toward the workspace (negative:
    /// away) with `value` on wheel `index` and the other wheel at its current value; a turn on the
    /// spot counts as 0. nil when unknown (no kinematics or no heading).
    func approachSpeed(_ index: Int, _ value: Double) -> Double? {
        guard let workspace = configuration.workspace, let wheels,
              pose.x.isFinite, pose.y.isFinite, pose.yaw.isFinite,
              index == wheels.left || index == wheels.right else { return nil }
        let left = index == wheels.left ? value : channels[wheels.left].current.continuousValue ?? 0
        let right = index == wheels.right ? value : channels[wheels.right].current.continuousValue ?? 0
        let speed = wheels.radius * (left + right) / 2
        if abs(speed) < 0.01 { return 0 }
        let step = 0.01
        let ahead = workspace.signedDistance(x: pose.x + step * cos(pose.yaw), y: pose.y + step * sin(pose.yaw))
        let gradient = (ahead - workspace.signedDistance(x: pose.x, y: pose.y)) / step
        return speed * gradient
    }

    /// In the recovery hold: `value` on wheel `index` passes if the robot then moves back toward the
    /// workspace (or turns on the spot), or moves out slower than with the wheel's current value.
    /// Unknown (no kinematics, no heading): refused.
    func improvesApproach(_ index: Int, to value: Double) -> Bool {
        guard let after = approachSpeed(index, value) else { return false }
        if after >= 0 { return true }
        guard let current = channels[index].current.continuousValue, let before = approachSpeed(index, current) else { return false }
        return after > before
    }

    // MARK: commanded versus measured

    /// A measured value of a monitored channel (a wheel's speed from its encoder, rad/s).
    /// Faster than commanded (or against it) beyond the tolerance for the monitor's time while
    /// energised → `runaway`; moving during a category-2 stop or a hold → `standstill`. Both are
    /// category-0 stops and levels: a reset is refused while the wheel still moves.
    public mutating func noteMeasured(_ channel: ChannelID, value: Double, at instant: Instant, emit: (ApprovedCommand) -> Void) {
        let i = channel.index
        guard i >= 0 && i < channels.count, let monitor = configuration.channels[i].motionMonitor else { return }
        let config = configuration.channels[i]
        let commanded = channels[i].current.continuousValue ?? 0
        let safe = config.safeValue.continuousValue ?? 0
        let stoppedTwo = if case .stopped(.two, _, _) = latch.state { true } else { false }
        // Power is off only once a category 0/1 stop has completed; during a category-1 ramp the
        // wheel is still driven and is checked against the ramp's value.
        let deenergised = if case .stopped(let c, _, _) = latch.state, c != .two { true } else { false }
        let standstill = stoppedTwo || (holdMask != 0 && config.isMotion && commanded == safe)
        var violation: FaultKind?
        if !value.isFinite {
            violation = .runaway  // a measurement that is no number is no evidence of standstill
        } else if deenergised {
            // Power is off: only a wheel that has tripped and still turns keeps its cause present.
            if channels[i].monitorTrip != nil && abs(value) > monitor.tolerance { violation = channels[i].monitorTrip }
        } else if standstill {
            if abs(value - safe) > monitor.tolerance { violation = .standstill }
        } else if abs(value) > abs(commanded) + monitor.tolerance || (value * commanded < 0 && abs(value) > monitor.tolerance) {
            violation = .runaway
        } else if abs(commanded) > monitor.tolerance && abs(value) < abs(commanded) - monitor.tolerance {
            violation = .stalledWheel
        }
        guard let kind = violation else {
            channels[i].violationSince = nil
            if channels[i].monitorTrip != nil {
                channels[i].monitorTrip = nil
                refreshMonitorLevels(at: instant, emit: emit)
            }
            return
        }
        // Too fast (runaway, standstill) and too slow (a stalled wheel) are separate streaks: a
        // wheel that swings from one to the other has each judged over its own full time.
        let slower = kind == .stalledWheel
        if channels[i].violationSince != nil && channels[i].violationSlower != slower { channels[i].violationSince = nil }
        channels[i].violationSlower = slower
        let since = channels[i].violationSince ?? instant
        channels[i].violationSince = since
        // A trip of another kind (a stalled wheel, say, that only warns) must not mask this one.
        if channels[i].monitorTrip != kind && instant.nanoseconds(since: since) >= monitor.time.nanoseconds {
            channels[i].monitorTrip = kind
            audit.append(AuditRecord(at: instant, kind: .fault, channel: i, requested: commanded, approved: value, fault: kind))
            refreshMonitorLevels(at: instant, emit: emit)
        }
    }

    mutating func refreshMonitorLevels(at instant: Instant, emit: (ApprovedCommand) -> Void) {
        var runaway = false, standstill = false, stalled = false
        for c in channels {
            if c.monitorTrip == .runaway { runaway = true }
            if c.monitorTrip == .standstill { standstill = true }
            if c.monitorTrip == .stalledWheel { stalled = true }
        }
        setCause(.runaway, present: runaway, at: instant, emit: emit)
        setCause(.standstill, present: standstill, at: instant, emit: emit)
        setCause(.stalledWheel, present: stalled, at: instant, emit: emit)
    }

    // MARK: time-driven checks

    /// Call every control cycle (a periodic task). Re-evaluates every level (sensors, interlocks,
    /// causes present), checks command watchdogs, and advances stop/hold ramps; guard-made
    /// commands go to `emit`.
    public mutating func tick(now: Instant, emit: (ApprovedCommand) -> Void) {
        if startedAt == nil { startedAt = now }
        checkSensors(now: now, emit: emit)
        checkInterlocks(at: now, emit: emit)
        // Every stop cause still present latches again at once (e.g. after a reset raced it).
        if present.rawValue != 0 {
            for raw in reactions.indices where present.rawValue & (1 << UInt32(raw)) != 0 {
                guard let kind = FaultKind(rawValue: raw), case .stop(let category) = reactions[raw] else { continue }
                let effective: StopCategory = switch kind {
                case .workspace: configuration.workspace?.stopCategory ?? category
                case .emergencyStopInput, .silentSensor, .staleSensor: latch.category ?? category
                default: category
                }
                ensureLatched(kind, category: effective, at: now, emit: emit)
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
}

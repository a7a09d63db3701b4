import Actuators
import Glibc
import Synchronization
import RTScheduler
import SafetyGuard
import Transports

/// A differential-drive rover's control path wired end to end: range frames and the gamepad come in
/// through inputs as deadline-tagged events; a periodic, critical drive task runs the obstacle-
/// avoiding policy; every wheel command goes through the guard; approved ones reach the actuators.
/// The guard ticks on its own periodic task (watchdogs, stale sensors, stop ramps) and takes the
/// scheduler's deadline faults. The same object runs on virtual time in lockstep tests and on the
/// real-time dispatch thread in `robotd demo`: only the clock and the transports differ.
public final class RoverRuntime: Sendable {
    public struct Configuration: Sendable {
        public var drivePeriod: Duration = .milliseconds(20)
        public var guardPeriod: Duration = .milliseconds(10)
        /// Consecutive drive-task misses that make a deadline fault (and a guard stop).
        public var criticalMisses = 5
        public var policy = ObstacleAvoidingDrive.Parameters()
        public var maxWheelSpeed = 12.0
        public var maxWheelAcceleration = 40.0
        public var commandWatchdog: Duration = .milliseconds(100)
        public var rangeMaxAge: Duration = .milliseconds(250)
        /// How long a drive command stays valid after its release.
        public var commandLifetime: Duration = .milliseconds(60)
        /// The gamepad key that latches the e-stop, and the one that resets it.
        public var estopKey = "BTN_EAST"
        public var resetKey = "BTN_START"
        public var expectedIMUHz = 200.0
        /// Wheel geometry for odometry, and where the rover starts in the odom frame.
        public var odometry = DiffDriveOdometry.Geometry()
        public var initialPose = (x: 0.0, y: 0.0, yaw: 0.0)
        /// The guard's workspace, checked against the odometry pose; nil: none. With a workspace the
        /// encoders become required sensors (odometry feeds it).
        public var workspace: Workspace?
        /// The range sensor's maximum: "no echo" means nothing closer than this (m).
        public var rangeMaximum = 4.0
        public var encoderMaxAge: Duration = .milliseconds(200)
        public var imuMaxAge: Duration = .milliseconds(100)
        /// No frame at all from the motor controller (sensor frames, heartbeats) for this long is
        /// a lost link, as an EOF is.
        public var controllerTimeout: Duration = .milliseconds(150)
        /// A required sensor silent this long after start is a stop; before, motion is held.
        public var startupTimeout: Duration = .seconds(2)
        /// Commanded versus measured wheel speed (from the encoders); nil: not monitored.
        public var wheelMonitor: MotionMonitor? = MotionMonitor(tolerance: 3.0, time: .milliseconds(250))
        /// IEC 60204-1: an e-stop is category 0 or 1.
        public var estopCategory: StopCategory = .zero
        /// The e-stop device is supervised: its reader ending is a stop of this category. nil:
        /// no e-stop device (`--no-estop-device`).
        public var estopDeviceLostCategory: StopCategory? = .one
        /// An e-stop device that speaks through a stream (a FIFO) must show a complete frame at
        /// least this often (keep-alive reports), or it counts as lost: a stream has no unplug
        /// event. nil: not checked (an evdev device reports its own removal).
        public var estopLiveness: Duration?
        /// Start latched (`power-on`): on hardware, nothing moves after a restart until a
        /// deliberate reset. The simulator demo starts released.
        public var startLatched = false
        /// TEST HOOK (the demo's `--fault policy-hang|policy-spin`): from this instant after the
        /// first drive cycle, the drive handler blocks or busy-loops until the hook is released.
        public var policyFault: PolicyFaultHook?
        public init() {}

        public var guardConfiguration: GuardConfiguration {
            var sensors = [RequiredSensor(name: "range", maxAge: rangeMaxAge, reaction: .stop(.one), validRange: 0...rangeMaximum),
                           // The drive policy does not use the IMU: its silence is a warning, audited and published.
                           RequiredSensor(name: "imu", maxAge: imuMaxAge, reaction: .warn)]
            // With a workspace the encoders feed the pose it is checked on: required. Without, their
            // silence blinds only the runaway monitor: a warning.
            sensors.append(RequiredSensor(name: "wheel-encoders", maxAge: encoderMaxAge,
                                          reaction: workspace != nil ? .stop(.one) : .warn))
            if let liveness = estopLiveness, let lost = estopDeviceLostCategory {
                sensors.append(RequiredSensor(name: "estop-device", maxAge: liveness, reaction: .stop(lost)))
            }
            var reactions: [FaultKind: Reaction] = [.emergencyStopInput: .stop(estopCategory)]
            if let lost = estopDeviceLostCategory { reactions[.estopDeviceLost] = .stop(lost) }
            var configuration = GuardConfiguration(
                channels: ["wheel_left", "wheel_right"].map {
                    ChannelConfiguration(name: $0, limits: .continuous(.velocity(maxVelocity: maxWheelSpeed,
                                                                                 maxAcceleration: maxWheelAcceleration)),
                                         watchdogTimeout: commandWatchdog, motionMonitor: wheelMonitor)
                },
                sensors: sensors, workspace: workspace, reactions: reactions)
            configuration.startupTimeout = startupTimeout
            configuration.startLatched = startLatched
            configuration.maxTickAge = guardPeriod * 3
            if var w = configuration.workspace, w.kinematics == nil {
                w.kinematics = DiffDriveKinematics(leftChannel: "wheel_left", rightChannel: "wheel_right",
                                                   wheelRadius: odometry.wheelRadius)
                configuration.workspace = w
            }
            return configuration
        }
    }

    /// Counts of the guard's verdicts on policy commands, and what the control path last saw.
    public struct Status: Sendable, Equatable, BitwiseCopyable {
        public var verdicts = VerdictCounts()
        public var range = Double.infinity
        public var command = (left: 0.0, right: 0.0)
        public var latched = false
        public var turning = false
        public var deadlineFaults = 0
        public var resets = 0
        /// The odometry pose estimate (odom frame).
        public var pose = (x: 0.0, y: 0.0, yaw: 0.0)
        public var workspaceHold = false
        public var reactivations = 0
        /// Resets refused, and the causes that refused the last one.
        public var refusedResets = 0
        public var lastRefusal: StopCauses = []
        /// Stop causes present now, and why the latch is held (if it is).
        public var causes: StopCauses = []
        public var latchCause: FaultKind?
        public var inRecovery = false
        /// Measured wheel speeds (rad/s, from the encoders).
        public var measured = (left: Double.nan, right: Double.nan)
        /// Handlers that overran their budget (the supervisor put the actuators in their safe state).
        public var stalls = 0

        public static func == (a: Status, b: Status) -> Bool {
            a.verdicts == b.verdicts && a.range.bitPattern == b.range.bitPattern && a.command == b.command && a.latched == b.latched
                && a.turning == b.turning && a.deadlineFaults == b.deadlineFaults && a.resets == b.resets
                && a.pose == b.pose && a.workspaceHold == b.workspaceHold && a.reactivations == b.reactivations
                && a.refusedResets == b.refusedResets && a.lastRefusal == b.lastRefusal && a.causes == b.causes
                && a.latchCause == b.latchCause && a.inRecovery == b.inRecovery && a.stalls == b.stalls
                && a.measured.left.bitPattern == b.measured.left.bitPattern && a.measured.right.bitPattern == b.measured.right.bitPattern
        }
    }

    struct Control: RuntimeControl {
        var guardian: SafetyGuard
        var policy: ObstacleAvoidingDrive
        var odometry: DiffDriveOdometry
        var status = RoverRuntime.Status()
        mutating func refreshStatus() {
            status.latched = guardian.latch.isLatched
            status.latchCause = guardian.latch.cause
            status.causes = guardian.blockingCauses
            status.inRecovery = guardian.inRecovery
        }
        /// A back end failed and is inactive until reactivated (a level for the guard).
        var backendDown = false
        /// The critical task whose miss streak raised the last deadline fault, and its on-time
        /// completions then.
        var missStreak: (task: TaskStatistics, onTimeAtFault: UInt64)?

        mutating func noteReset(_ outcome: ResetOutcome?) {
            switch outcome {
            case .released?, .releasedIntoRecovery?: status.resets += 1
            case .refused(let causes)?:
                status.refusedResets += 1
                status.lastRefusal = causes
            case .resetKeyHeldThrough?:
                status.refusedResets += 1
                status.lastRefusal = StopCauses(.emergencyStopInput)
            case .notLatched?, .stillStopping?, nil: break
            }
        }
    }

    public let configuration: Configuration
    public let sensors: FrameSensorInput
    public let gamepad: GamepadInput
    public let actuators: ActuatorSet
    public let audit: AuditLog
    /// The guard's required sensors by index (audit records name a sensor by its index).
    public let sensorNames: [String]
    /// The e-stop key's level and press count (set by the input thread) and its device's state.
    public let estop = EStopSignal()
    /// The rover link as the serial reader sees it (false after EOF/EIO until reconnected).
    private let linkUp = LinkFlag()
    private let shared: SharedState<Control>
    /// Published by the handlers (under the control lock: one writer at a time), read by anyone.
    private let statusCell = LatestValue(Status())
    private let faults: SourceHandle
    private let reactivations: SourceHandle

    /// Registers the sources and tasks on `scheduler` (before it starts) and drives the actuator set
    /// that `actuators` builds, bound to this runtime's guard (it gets the guard's seal); its back
    /// ends must cover channels 0 (left wheel) and 1 (right wheel).
    public init(configuration: Configuration = Configuration(), scheduler: Scheduler,
                actuators makeActuators: (GuardSeal) throws -> ActuatorSet) throws {
        self.configuration = configuration
        let guardian = try SafetyGuard(configuration: configuration.guardConfiguration)
        let actuators = try boundActuators(guardian, makeActuators)
        self.actuators = actuators
        sensorNames = guardian.configuration.sensors.map(\.name)
        audit = guardian.audit
        let start = configuration.initialPose
        let statusCell = self.statusCell
        let shared = SharedState(Control(guardian: guardian, policy: ObstacleAvoidingDrive(parameters: configuration.policy),
                                    odometry: DiffDriveOdometry(geometry: configuration.odometry, x: start.x, y: start.y, yaw: start.yaw)))
        self.shared = shared
        let write: @Sendable (ApprovedCommand) -> Void = { actuators.write($0) }
        let rangeID = guardian.sensor(named: "range")
        let encodersID = guardian.sensor(named: "wheel-encoders")
        let rangeMaximum = configuration.rangeMaximum

        let range = scheduler.addSource("range", queue: QueueSpec(capacity: 8, overflow: .dropOldest),
                                        subscription: Subscription(priority: .high, relativeDeadline: .milliseconds(10))) { event in
            guard case .values(let v) = event.payload else { return }
            shared.update(statusCell) { c in
                // A faulty or non-finite reading is no sample: the range ages toward stale (fail closed).
                let value = ObstacleAvoidingDrive.effectiveRange(value: v[0], status: Int(v[1]), maximum: rangeMaximum)
                if let rangeID { c.guardian.noteSensor(rangeID, value: value, at: event.release, emit: write) }
            }
        }
        // Encoder counts → odometry → the guard's workspace ladder; wheel speeds → commanded versus measured.
        let encoders = scheduler.addSource("wheel-encoders", queue: QueueSpec(capacity: 8, overflow: .dropOldest),
                                           subscription: Subscription(priority: .high, relativeDeadline: .milliseconds(10))) { event in
            guard case .values(let v) = event.payload, let left = Int32(exactly: v[0]), let right = Int32(exactly: v[1]),
                  let micros = UInt32(exactly: v[2]) else { return }
            shared.update(statusCell) { c in
                c.odometry.update(leftTicks: left, rightTicks: right, deviceTimeMicros: micros)
                c.status.pose = (c.odometry.x, c.odometry.y, c.odometry.yaw)
                if let encodersID { c.guardian.noteSensor(encodersID, at: event.release) }
                c.guardian.notePose(x: c.odometry.x, y: c.odometry.y, yaw: c.odometry.yaw, at: event.release, emit: write)
                let speeds = c.odometry.wheelSpeeds
                c.status.measured = speeds
                // After the first frame every frame must give a speed: one that cannot be measured is
                // no evidence of a safe wheel (the monitor treats it as a violation after its time).
                if c.odometry.updates > 0 {
                    c.guardian.noteMeasured(ChannelID(index: 0), value: speeds.left, at: event.release, emit: write)
                    c.guardian.noteMeasured(ChannelID(index: 1), value: speeds.right, at: event.release, emit: write)
                }
                c.status.workspaceHold = c.guardian.isHolding
            }
        }
        let imuID = guardian.sensor(named: "imu")
        let imu = scheduler.addSource("imu", queue: QueueSpec(capacity: 8, overflow: .keepLatestPerKey),
                                      subscription: Subscription(priority: .normal, relativeDeadline: .milliseconds(20))) { event in
            guard let imuID else { return }
            shared.update(statusCell) { $0.guardian.noteSensor(imuID, at: event.release) }
        }
        sensors = FrameSensorInput(sources: .init(imu: imu, wheelEncoders: encoders, range: range), expectedIMUHz: configuration.expectedIMUHz)

        // The e-stop's event only makes the guard look at once; the level and the sticky press
        // count it reads are set by the input thread and read again on every guard tick.
        let estop = self.estop
        let estopSource = scheduler.addSource("estop", queue: QueueSpec(capacity: 4, overflow: .reject),
                                              subscription: Subscription(priority: .critical, relativeDeadline: .milliseconds(1))) { event in
            shared.update(statusCell) { $0.guardian.observeEStop(asserted: estop.isPressed, presses: estop.presses, releasedAt: estop.releasedInstant,
                                                                 at: event.release, emit: write) }
        }
        // Faults from outside the control path (an actuator back end failed, a link dropped) come in
        // as events like everything else: the reporter may be inside a guard call on this very
        // path, so it must not take the guard's lock itself.
        faults = scheduler.addSource("faults", queue: QueueSpec(capacity: 16, overflow: .dropOldest),
                                     subscription: Subscription(priority: .critical, relativeDeadline: .milliseconds(1))) { event in
            guard case .signal(let code, let backendFault) = event.payload, let kind = FaultKind(rawValue: Int(code)) else { return }
            shared.update(statusCell) { c in
                // A failed back end stays inactive until reactivated: a level, re-checked every tick.
                if backendFault != 0 { c.backendDown = true }
                c.guardian.trigger(kind, at: event.release, emit: write)
            }
        }
        // Reactivation runs on the dispatch thread under the control lock: the back end's safe state
        // and the guard's knowledge of it change together, so no ramp step or policy command
        // computed from the old state can reach the back end in between.
        reactivations = scheduler.addSource("actuator-reactivation", queue: QueueSpec(capacity: 4, overflow: .dropOldest),
                                            subscription: Subscription(priority: .critical, relativeDeadline: .milliseconds(5))) { event in
            guard case .object(let object) = event.payload, let request = object as? BackendName else { return }
            shared.update(statusCell) { c in
                guard actuators.reactivate(request.name) else { return }
                for channel in actuators.channels(of: request.name) {
                    c.guardian.noteSafeStateApplied(to: channel, at: event.release)
                }
                c.backendDown = false
                c.status.reactivations += 1
            }
        }
        let axes = scheduler.addSource("gamepad-axes", queue: QueueSpec(capacity: 8, overflow: .keepLatestPerKey),
                                       subscription: Subscription(priority: .normal, relativeDeadline: .milliseconds(50))) { _ in }
        let buttons = scheduler.addSource("gamepad-buttons", queue: QueueSpec(capacity: 16, overflow: .dropOldest),
                                          subscription: Subscription(priority: .normal, relativeDeadline: .milliseconds(50))) { event in
            // The reset key acts on its release edge (ISO 13849-1 practice); the guard refuses it
            // while a cause persists, and the channels still need fresh commands after it.
            guard case .signal(let code, let value) = event.payload, code == GamepadInput.SignalCode.actionBase + 1 else { return }
            shared.update(statusCell) { c in
                c.guardian.observeEStop(asserted: estop.isPressed, presses: estop.presses, releasedAt: estop.releasedInstant,
                                       at: event.release, emit: write)
                c.noteReset(c.guardian.resetKey(down: value == 1, at: event.release))
            }
        }
        gamepad = try GamepadInput(
            mapping: InputMapping(keys: [.init(code: configuration.estopKey, action: .emergencyStop),
                                         .init(code: configuration.resetKey, action: .named("reset"))]),
            sources: .init(axes: axes, buttons: buttons, emergencyStop: estopSource), estop: estop)

        let lifetime = configuration.commandLifetime
        let policyFault = configuration.policyFault
        let clock = scheduler.clock
        scheduler.addPeriodic("drive", PeriodicSpec(period: configuration.drivePeriod, priority: .high,
                                                    critical: CriticalPolicy(consecutiveMisses: configuration.criticalMisses))) { event in
            shared.update(statusCell) { c in
                // The test hook strikes inside the control lock, as a real stuck policy would.
                policyFault?.strike(at: event.release)
                // Unknown (silent, stale or faulty) is NaN, never +∞: the policy treats it as blocked.
                let range = rangeID.flatMap { c.guardian.freshValue(of: $0, now: event.release) } ?? .nan
                c.status.range = range
                let (left, right) = c.policy.step(range: range)
                c.status.command = (left, right)
                c.status.turning = c.policy.mode == .turning
                let now = clock.now()
                c.status.verdicts.route(c.guardian.check(Command(channel: ChannelID(index: 0), value: .continuous(left), origin: .policy,
                                                                 issuedAt: event.release, validUntil: event.release + lifetime), now: now), to: write)
                c.status.verdicts.route(c.guardian.check(Command(channel: ChannelID(index: 1), value: .continuous(right), origin: .policy,
                                                                 issuedAt: event.release, validUntil: event.release + lifetime), now: now), to: write)
            }
            // The link's keep-alive, once per control cycle (real-time safe: a flag and a wake).
            actuators.heartbeat()
        }
        let linkUp = self.linkUp
        let estopDeviceID = guardian.sensor(named: "estop-device")
        let superviseEStopDevice = configuration.estopDeviceLostCategory != nil
        let controllerTimeout = configuration.controllerTimeout.nanoseconds
        let frames = sensors.counters
        // Critical: a guard task that keeps missing is a stop, and `maxTickAge` refuses commands
        // when its ticks stop (watchdogs, levels and ramps would freeze with them).
        scheduler.addPeriodic("guard", PeriodicSpec(period: configuration.guardPeriod, priority: .high,
                                                    critical: CriticalPolicy(consecutiveMisses: configuration.criticalMisses))) { event in
            let now = event.release
            // Every level, every tick (fail closed): the e-stop and its device, the link (EOF or
            // a silent controller), a failed back end, the deadline-fault streak.
            let lastFrame = frames.lastFrameAt.load(ordering: .acquiring)
            shared.update(statusCell) { c in
                let since = lastFrame > 0 ? Instant(nanoseconds: lastFrame) : c.guardian.firstTick ?? now
                let silent = now.nanoseconds(since: since) > controllerTimeout
                c.guardian.observeEStop(asserted: estop.isPressed, presses: estop.presses, releasedAt: estop.releasedInstant,
                                        at: now, emit: write)
                if let estopDeviceID, case let last = estop.lastFrameAt, last > 0 {
                    c.guardian.noteSensor(estopDeviceID, at: Instant(nanoseconds: last))
                }
                if superviseEStopDevice {
                    c.guardian.setCause(.estopDeviceLost, present: estop.isDeviceLost, at: now, emit: write)
                }
                c.guardian.setCause(.connectionLost, present: !linkUp.isUp || silent, at: now, emit: write)
                c.guardian.setCause(.actuatorFailure, present: c.backendDown, at: now, emit: write)
                // The faulting task's streak is broken by an on-time completion after the fault.
                if let streak = c.missStreak, streak.task.onTimeCompletions > streak.onTimeAtFault {
                    c.missStreak = nil
                    c.guardian.setCause(.deadlineFault, present: false, at: now, emit: write)
                }
                c.guardian.applySafeStateNotices(from: actuators, at: now)
                c.guardian.tick(now: now, emit: write)
            }
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
                c.missStreak = (task, task.onTimeCompletions)
                c.status.deadlineFaults += 1
                c.guardian.handle(fault, emit: write)
            }
        }
    }

    /// Asks for a back end to be reactivated (its link is back): done on the dispatch thread, in its
    /// safe state, with the guard told before any command can reach it. Motion needs a reset
    /// first if the guard latched when the link went.
    @discardableResult
    public func requestReactivation(of backend: String, at instant: Instant) -> Bool {
        reactivations.post(.object(BackendName(backend)), release: instant).wasAccepted
    }

    /// Hands a fault to the guard (through the scheduler), e.g. `.actuatorFailure`, `.connectionLost`.
    @discardableResult
    public func report(_ kind: FaultKind, at instant: Instant) -> Bool {
        faults.post(.signal(code: Int32(kind.rawValue), value: 0), release: instant).wasAccepted
    }

    /// What the e-stop device's reader says: its end (EOF, ENODEV, the FIFO writer gone) is the
    /// e-stop device lost — a stop, re-checked every guard tick — and events again clear it.
    /// Returns a line for the log.
    public func handle(_ notice: InputDeviceReader.Notice, arrival: Int64) -> String {
        switch notice {
        case .opened(let name):
            estop.setDeviceLost(false)
            return name
        case .resynchronised:
            gamepad.resynchronised(arrival: arrival)
            return "SYN_DROPPED: resynchronised"
        case .ended(let reason):
            estop.setDeviceLost(true)
            return "ended: \(reason) — e-stop device lost"
        case .writerGone:
            estop.setDeviceLost(true)
            gamepad.writerGone()  // its unfinished frame must not merge with the next writer's
            return "the writer went away — e-stop device lost"
        case .resumed:
            estop.setDeviceLost(false)
            return "events again"
        }
    }

    /// The actuator set reported a back end's failure (it is inactive until reactivated): a level
    /// for the guard (`actuator-failure`), and `connection-lost` at once if the link went.
    @discardableResult
    public func reportActuatorFault(lostLink: Bool, at instant: Instant) -> Bool {
        faults.post(.signal(code: Int32((lostLink ? FaultKind.connectionLost : .actuatorFailure).rawValue), value: 1),
                    release: instant).wasAccepted
    }

    /// The rover link went down (EOF, EIO) or came back. Down is a level the guard re-checks on
    /// every tick (`connection-lost`): a reset is refused until the link is up again.
    public func setLink(up: Bool, at instant: Instant) {
        linkUp.set(up)
        if !up { report(.connectionLost, at: instant) }
    }

    /// The status as the dispatch thread last published it (lock-free: a reader never makes a
    /// handler wait, and never waits on one).
    public var status: Status { statusCell.load() }
    /// How many times the handlers have published the status: it stops moving while a handler is
    /// stuck (the guard tick alone publishes every `guardPeriod`). Lock-free.
    public var statusPublications: UInt64 { statusCell.stores }
    public var isLatched: Bool { statusCell.load().latched }
}

/// The rover link's state as the serial reader thread sees it.
final class LinkFlag: Sendable {
    private let up = Atomic<Bool>(true)
    func set(_ value: Bool) { up.store(value, ordering: .releasing) }
    var isUp: Bool { up.load(ordering: .acquiring) }
}

/// TEST HOOK for the demo's `policy-hang` and `policy-spin` faults: makes the drive handler block
/// (waits) or busy-loop (spins) from a given instant until released, so the supervisor's path can
/// be shown end to end. Never configured outside `robotd demo --fault`.
public final class PolicyFaultHook: Sendable {
    public enum Kind: String, Sendable { case hang, spin }
    public let kind: Kind
    /// After the first drive cycle (ns).
    public let after: Int64
    private let first = Atomic<Int64>(0)
    private let released = Atomic<Bool>(false)
    public let struck = Atomic<Bool>(false)

    public init(kind: Kind, after: Duration) {
        self.kind = kind
        self.after = after.nanoseconds
    }

    /// Lets a stuck handler return (the demo's end, so the dispatch thread can be joined).
    public func release() { released.store(true, ordering: .releasing) }

    func strike(at instant: Instant) {
        if first.load(ordering: .relaxed) == 0 { first.store(instant.nanoseconds, ordering: .relaxed) }
        guard !struck.load(ordering: .relaxed), instant.nanoseconds - first.load(ordering: .relaxed) >= after else { return }
        struck.store(true, ordering: .relaxed)
        while !released.load(ordering: .acquiring) {
            switch kind {
            case .hang: usleep(1000)
            case .spin: continue
            }
        }
    }
}

extension EStopSignal {
    /// The last release's arrival as an instant (nil: none yet).
    var releasedInstant: Instant? { releasedAt > 0 ? Instant(nanoseconds: releasedAt) : nil }
}

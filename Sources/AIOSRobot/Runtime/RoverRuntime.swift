import Actuators
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
        /// The guard's workspace, checked against the odometry pose; nil: none.
        public var workspace: Workspace?
        public init() {}

        public var guardConfiguration: GuardConfiguration {
            GuardConfiguration(
                channels: ["wheel_left", "wheel_right"].map {
                    ChannelConfiguration(name: $0, limits: .continuous(.velocity(maxVelocity: maxWheelSpeed,
                                                                                 maxAcceleration: maxWheelAcceleration)),
                                         watchdogTimeout: commandWatchdog)
                },
                sensors: [RequiredSensor(name: "range", maxAge: rangeMaxAge, reaction: .stop(.one))],
                workspace: workspace)
        }
    }

    /// Counts of the guard's verdicts on policy commands, and what the control path last saw.
    public struct Status: Sendable, Equatable {
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

        public static func == (a: Status, b: Status) -> Bool {
            a.verdicts == b.verdicts && a.range.bitPattern == b.range.bitPattern && a.command == b.command && a.latched == b.latched
                && a.turning == b.turning && a.deadlineFaults == b.deadlineFaults && a.resets == b.resets
                && a.pose == b.pose && a.workspaceHold == b.workspaceHold && a.reactivations == b.reactivations
        }
    }

    struct Control {
        var guardian: SafetyGuard
        var policy: ObstacleAvoidingDrive
        var odometry: DiffDriveOdometry
        var status = Status()
    }

    public let configuration: Configuration
    public let sensors: FrameSensorInput
    public let gamepad: GamepadInput
    public let actuators: ActuatorSet
    public let audit: AuditLog
    private let shared: SharedState<Control>
    private let faults: SourceHandle
    private let reactivations: SourceHandle

    /// A back end to bring back (payload of the reactivation source).
    final class BackendName: Sendable {
        let name: String
        init(_ name: String) { self.name = name }
    }

    /// Registers the sources and tasks on `scheduler` (before it starts) and drives the actuator set
    /// that `actuators` builds, bound to this runtime's guard (it gets the guard's seal); its back
    /// ends must cover channels 0 (left wheel) and 1 (right wheel).
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
        let start = configuration.initialPose
        let shared = SharedState(Control(guardian: guardian, policy: ObstacleAvoidingDrive(parameters: configuration.policy),
                                    odometry: DiffDriveOdometry(geometry: configuration.odometry, x: start.x, y: start.y, yaw: start.yaw)))
        self.shared = shared
        let write: @Sendable (ApprovedCommand) -> Void = { actuators.write($0) }
        let rangeID = guardian.sensor(named: "range")

        let range = scheduler.addSource("range", queue: QueueSpec(capacity: 8, overflow: .dropOldest),
                                        subscription: Subscription(priority: .high, relativeDeadline: .milliseconds(10))) { event in
            guard case .values(let v) = event.payload else { return }
            shared.withLock { c in
                c.status.range = ObstacleAvoidingDrive.effectiveRange(value: v[0], status: Int(v[1]))
                if let rangeID { c.guardian.noteSensor(rangeID, at: event.release) }
            }
        }
        // Encoder counts → odometry → the guard's workspace ladder.
        let encoders = scheduler.addSource("wheel-encoders", queue: QueueSpec(capacity: 8, overflow: .dropOldest),
                                           subscription: Subscription(priority: .high, relativeDeadline: .milliseconds(10))) { event in
            guard case .values(let v) = event.payload, let left = Int32(exactly: v[0]), let right = Int32(exactly: v[1]) else { return }
            shared.withLock { c in
                c.odometry.update(leftTicks: left, rightTicks: right)
                c.status.pose = (c.odometry.x, c.odometry.y, c.odometry.yaw)
                c.guardian.notePose(x: c.odometry.x, y: c.odometry.y, at: event.release, emit: write)
                c.status.workspaceHold = c.guardian.isHolding
            }
        }
        sensors = FrameSensorInput(sources: .init(wheelEncoders: encoders, range: range), expectedIMUHz: configuration.expectedIMUHz)

        let estop = scheduler.addSource("estop", queue: QueueSpec(capacity: 4, overflow: .reject),
                                        subscription: Subscription(priority: .critical, relativeDeadline: .milliseconds(1))) { event in
            shared.withLock { $0.guardian.trigger(.emergencyStopInput, category: .zero, at: event.release, emit: write) }
        }
        // Faults from outside the control path (an actuator back end failed, a link dropped) come in
        // as events like everything else: the reporter may be inside a guard call on this very
        // path, so it must not take the guard's lock itself.
        faults = scheduler.addSource("faults", queue: QueueSpec(capacity: 16, overflow: .dropOldest),
                                     subscription: Subscription(priority: .critical, relativeDeadline: .milliseconds(1))) { event in
            guard case .signal(let code, _) = event.payload, let kind = FaultKind(rawValue: Int(code)) else { return }
            shared.withLock { $0.guardian.trigger(kind, at: event.release, emit: write) }
        }
        // Reactivation runs on the dispatch thread under the control lock: the back end's safe state
        // and the guard's knowledge of it change together, so no ramp step or policy command
        // computed from the old state can reach the back end in between.
        reactivations = scheduler.addSource("actuator-reactivation", queue: QueueSpec(capacity: 4, overflow: .dropOldest),
                                            subscription: Subscription(priority: .critical, relativeDeadline: .milliseconds(5))) { event in
            guard case .object(let object) = event.payload, let request = object as? BackendName else { return }
            shared.withLock { c in
                guard actuators.reactivate(request.name) else { return }
                for channel in actuators.channels(of: request.name) {
                    c.guardian.noteSafeStateApplied(to: channel, at: event.release)
                }
                c.status.reactivations += 1
            }
        }
        let axes = scheduler.addSource("gamepad-axes", queue: QueueSpec(capacity: 8, overflow: .keepLatestPerKey),
                                       subscription: Subscription(priority: .normal, relativeDeadline: .milliseconds(50))) { _ in }
        let buttons = scheduler.addSource("gamepad-buttons", queue: QueueSpec(capacity: 16, overflow: .dropOldest),
                                          subscription: Subscription(priority: .normal, relativeDeadline: .milliseconds(50))) { event in
            // The reset key re-arms a released latch; the channels still need fresh commands.
            guard case .signal(let code, let value) = event.payload, value == 1,
                  code == GamepadInput.SignalCode.actionBase + 1 else { return }
            shared.withLock { c in
                if c.guardian.reset(at: event.release) == .released { c.status.resets += 1 }
            }
        }
        gamepad = try GamepadInput(
            mapping: InputMapping(keys: [.init(code: configuration.estopKey, action: .emergencyStop),
                                         .init(code: configuration.resetKey, action: .named("reset"))]),
            sources: .init(axes: axes, buttons: buttons, emergencyStop: estop))

        let lifetime = configuration.commandLifetime
        let clock = scheduler.clock
        scheduler.addPeriodic("drive", PeriodicSpec(period: configuration.drivePeriod, priority: .high,
                                                    critical: CriticalPolicy(consecutiveMisses: configuration.criticalMisses))) { event in
            shared.withLock { c in
                let (left, right) = c.policy.step(range: c.status.range)
                c.status.command = (left, right)
                c.status.turning = c.policy.mode == .turning
                let now = clock.now()
                c.status.verdicts.route(c.guardian.check(Command(channel: ChannelID(index: 0), value: .continuous(left), origin: .policy,
                                                                 issuedAt: event.release, validUntil: event.release + lifetime), now: now), to: write)
                c.status.verdicts.route(c.guardian.check(Command(channel: ChannelID(index: 1), value: .continuous(right), origin: .policy,
                                                                 issuedAt: event.release, validUntil: event.release + lifetime), now: now), to: write)
                c.status.latched = c.guardian.latch.isLatched
            }
            // The link's keep-alive, once per control cycle (real-time safe: a flag and a wake).
            actuators.heartbeat()
        }
        scheduler.addPeriodic("guard", PeriodicSpec(period: configuration.guardPeriod, priority: .high)) { event in
            shared.withLock { $0.guardian.tick(now: event.release, emit: write) }
        }
        scheduler.onDeadlineFault = { fault in
            shared.withLock { c in
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

    public var status: Status { shared.withLock { $0.status } }
    public var isLatched: Bool { shared.withLock { $0.guardian.latch.isLatched } }
}

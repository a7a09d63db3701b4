import RTScheduler

/// A channel's limits: continuous or discrete.
public enum ChannelLimits: Sendable, Equatable {
    case continuous(ContinuousLimits)
    case discrete(DiscreteLimits)

    var isContinuous: Bool { if case .continuous = self { true } else { false } }
}

/// What the guard does about a fault.
public enum Reaction: Sendable, Equatable {
    /// Record it (audit) and carry on.
    case warn
    /// Zero motion: motion channels go to their safe value and refuse commands while the
    /// condition lasts (`estop-unknown`: every channel). Not latched.
    case hold
    /// Latch the e-stop with this stop category.
    case stop(StopCategory)
}

public struct ChannelConfiguration: Sendable, Equatable {
    public var name: String
    public var limits: ChannelLimits
    /// Tighter envelopes per origin (e.g. planner-originated commands).
    public var originLimits: [CommandOrigin: ChannelLimits]
    public var safeValue: CommandValue
    /// No fresh approved command within this → the channel gets its safe value.
    public var watchdogTimeout: Duration?
    /// Ramp speed toward the safe value for category 1/2 stops, holds and watchdogs (units/s).
    /// nil: the limits' deceleration (or rate) limit; with neither, the safe value is applied at once.
    public var stopRate: Double?
    /// Motion channels are zeroed by `hold`. Default: velocity, effort and duty channels.
    public var isMotion: Bool
    /// The longest step the limiter credits between two commands (s). A command after a longer
    /// gap (or the first one) is limited as if this much time had passed: the limiter never
    /// allows a bigger change just because the commands stopped for a while.
    public var maxStepInterval: Double
    /// Commanded versus measured (encoders): nil for no monitoring.
    public var motionMonitor: MotionMonitor?
    /// The strictest way this channel may be stopped when the guard latches: a latch of a gentler
    /// category stops this channel with this one instead (a heater: 0, power off at once, even
    /// under a category-1 stop). nil: the latch's category.
    public var stopCategory: StopCategory?

    public init(name: String, limits: ChannelLimits, originLimits: [CommandOrigin: ChannelLimits] = [:],
                safeValue: CommandValue? = nil, watchdogTimeout: Duration? = nil, stopRate: Double? = nil,
                isMotion: Bool = true, maxStepInterval: Double = 0.1, motionMonitor: MotionMonitor? = nil,
                stopCategory: StopCategory? = nil) {
        self.name = name
        self.limits = limits
        self.originLimits = originLimits
        switch limits {
        case .continuous: self.safeValue = safeValue ?? .continuous(0)
        case .discrete: self.safeValue = safeValue ?? .discrete(0)
        }
        self.watchdogTimeout = watchdogTimeout
        self.stopRate = stopRate
        self.isMotion = isMotion
        self.maxStepInterval = maxStepInterval
        self.motionMonitor = motionMonitor
        self.stopCategory = stopCategory
    }

    /// How this channel stops under a latch of `category`: the stricter of the two.
    func stopCategory(under category: StopCategory) -> StopCategory { Swift.min(category, stopCategory ?? category) }

    var effectiveStopRate: Double? {
        if let stopRate { return stopRate }
        if case .continuous(let l) = limits { return l.maxDecelerationRate ?? l.maxRate }
        return nil
    }
}

/// Commanded versus measured for one channel (a wheel with an encoder): measured faster than
/// commanded (or turning against it) by more than `tolerance` for `time` is a runaway; measured
/// beyond `tolerance` during a category-2 stop or a hold is a standstill violation (both stop with
/// category 0); measured slower than commanded by more than `tolerance` for `time` while driven is
/// a stalled wheel (blocked, or its encoder frozen: stop, category 1 by default).
public struct MotionMonitor: Sendable, Equatable {
    public var tolerance: Double
    public var time: Duration
    public init(tolerance: Double, time: Duration) {
        self.tolerance = tolerance
        self.time = time
    }
}

/// A sensor the guard requires to be fresh. One that has never reported is not fresh: motion is
/// held until it reports, and after the configuration's `startupTimeout` that is a stop.
public struct RequiredSensor: Sendable, Equatable {
    public var name: String
    public var maxAge: Duration
    public var reaction: Reaction
    /// Values outside this range (and non-finite ones) are no sample; nil: any finite value.
    public var validRange: ClosedRange<Double>?
    public init(name: String, maxAge: Duration, reaction: Reaction = .stop(.one), validRange: ClosedRange<Double>? = nil) {
        self.name = name
        self.maxAge = maxAge
        self.reaction = reaction
        self.validRange = validRange
    }
}

/// A reading beyond a limit is a stop cause for the channels it names, whatever the setpoint or
/// the policy says (e.g. chamber above 60 °C → heater off). The channels go to their safe value
/// de-energised and stay locked until a reset after the reading is back within the limit. A
/// missing or stale reading counts as beyond the limit (fail closed).
public struct ValueInterlock: Sendable, Equatable {
    public var sensor: String
    public var min: Double?
    public var max: Double?
    public var channels: [String]
    public init(sensor: String, min: Double? = nil, max: Double? = nil, channels: [String]) {
        self.sensor = sensor
        self.min = min
        self.max = max
        self.channels = channels
    }

    func violated(by value: Double) -> Bool {
        guard value.isFinite else { return true }
        if let min, value < min { return true }
        if let max, value > max { return true }
        return false
    }
}

/// A differential drive's wheel channels and geometry, so that in the workspace recovery hold the
/// guard can tell whether a wheel command moves the robot back toward the workspace.
public struct DiffDriveKinematics: Sendable, Equatable {
    public var leftChannel: String
    public var rightChannel: String
    /// m; wheel channels are in rad/s.
    public var wheelRadius: Double
    public init(leftChannel: String, rightChannel: String, wheelRadius: Double) {
        self.leftChannel = leftChannel
        self.rightChannel = rightChannel
        self.wheelRadius = wheelRadius
    }
}

public struct SensorID: Hashable, Sendable {
    public let index: Int
}

/// The allowed area for the pose estimate (REP 103: metres, in the odom frame), with a ladder:
/// inside but within `warnDistance` of the edge → warn; outside by up to `stopDistance` → hold
/// (zero motion); further out → stop with `stopCategory`.
public struct Workspace: Sendable, Equatable {
    public struct Point: Sendable, Equatable {
        public var x: Double
        public var y: Double
        public init(x: Double, y: Double) { self.x = x; self.y = y }
    }
    /// A simple polygon (vertices in order); nil for none.
    public var polygon: [Point]?
    /// A circle around `center`; nil for none. With both, the pose must be inside both.
    public var radius: Double?
    public var center: Point
    public var warnDistance: Double
    public var stopDistance: Double
    public var stopCategory: StopCategory
    /// In the recovery hold (a reset while beyond the stop level), wheel commands are checked
    /// against these kinematics; without them only the pose is watched.
    public var kinematics: DiffDriveKinematics?
    /// In the recovery hold, the pose getting further out than this (m) beyond where the reset
    /// happened latches again.
    public var recoveryTolerance: Double

    public init(polygon: [Point]? = nil, radius: Double? = nil, center: Point = Point(x: 0, y: 0),
                warnDistance: Double = 0.5, stopDistance: Double = 0.5, stopCategory: StopCategory = .one,
                kinematics: DiffDriveKinematics? = nil, recoveryTolerance: Double = 0.1) {
        self.kinematics = kinematics
        self.recoveryTolerance = recoveryTolerance
        self.polygon = polygon
        self.radius = radius
        self.center = center
        self.warnDistance = warnDistance
        self.stopDistance = stopDistance
        self.stopCategory = stopCategory
    }

    /// Signed distance to the edge: positive inside, negative outside (metres).
    public func signedDistance(x: Double, y: Double) -> Double {
        var distance = Double.infinity
        if let radius {
            let dx = x - center.x, dy = y - center.y
            distance = min(distance, radius - (dx * dx + dy * dy).squareRoot())
        }
        if let polygon, polygon.count >= 3 {
            var inside = false
            var edge = Double.infinity
            var j = polygon.count - 1
            for i in 0..<polygon.count {
                let a = polygon[i], b = polygon[j]
                if (a.y > y) != (b.y > y), x < (b.x - a.x) * (y - a.y) / (b.y - a.y) + a.x { inside.toggle() }
                // Distance from (x, y) to segment ab.
                let abx = b.x - a.x, aby = b.y - a.y
                let lengthSquared = abx * abx + aby * aby
                let t = lengthSquared > 0 ? max(0, min(1, ((x - a.x) * abx + (y - a.y) * aby) / lengthSquared)) : 0
                let px = a.x + t * abx - x, py = a.y + t * aby - y
                edge = min(edge, (px * px + py * py).squareRoot())
                j = i
            }
            distance = min(distance, inside ? edge : -edge)
        }
        return distance
    }

    public enum Level: Int, Sendable, Comparable {
        case inside = 0, warn, hold, stop
        public static func < (a: Level, b: Level) -> Bool { a.rawValue < b.rawValue }
    }

    public func level(x: Double, y: Double) -> Level {
        let d = signedDistance(x: x, y: y)
        if d >= warnDistance { return .inside }
        if d >= 0 { return .warn }
        if -d <= stopDistance { return .hold }
        return .stop
    }
}

public struct GuardConfiguration: Sendable, Equatable {
    public var channels: [ChannelConfiguration]
    public var sensors: [RequiredSensor]
    public var workspace: Workspace?
    /// What each fault kind does. Missing kinds use `defaultReactions`.
    public var reactions: [FaultKind: Reaction]
    public var auditCapacity: Int
    /// How long the guard's own commands (safe values, ramp steps) stay valid: like every
    /// approval they expire, so none can be replayed later.
    public var guardCommandValidity: Duration = .milliseconds(250)
    /// A required sensor that has not reported this long after the guard's first tick is a stop
    /// (`silent-sensor`); before that, motion is held.
    public var startupTimeout: Duration = .seconds(2)
    /// Start latched (`power-on`, category 0): on hardware, nothing moves after a restart until a
    /// deliberate reset.
    public var startLatched = false
    public var interlocks: [ValueInterlock] = []
    /// An approval is valid at most this long after it was made (and never past the command's own
    /// `validUntil`).
    public var maxApprovalValidity: Duration = .seconds(1)
    /// Commands are refused (`guard-not-ticking`) unless `tick` ran within this: a starved guard
    /// task must not leave watchdogs, levels and ramps frozen while commands still pass. nil: off.
    public var maxTickAge: Duration?

    public static let defaultReactions: [FaultKind: Reaction] = [
        .emergencyStopInput: .stop(.one),
        .deadlineFault: .stop(.one),
        .staleSensor: .stop(.one),
        .workspace: .stop(.one),
        .actuatorFailure: .stop(.zero),
        .connectionLost: .stop(.one),
        .commandWatchdog: .warn,
        .operatorRequest: .stop(.two),
        .estopDeviceLost: .stop(.one),
        .silentSensor: .stop(.one),
        .runaway: .stop(.zero),
        .standstill: .stop(.zero),
        .dispatchStall: .stop(.zero),
        .valueInterlock: .stop(.zero),
        .remoteStop: .stop(.one),
        .powerOn: .stop(.zero),
        .invalidSample: .warn,
        .stalledWheel: .stop(.one),
        .estopUnknown: .hold,
    ]

    public init(channels: [ChannelConfiguration], sensors: [RequiredSensor] = [], workspace: Workspace? = nil,
                reactions: [FaultKind: Reaction] = [:], auditCapacity: Int = 1024) {
        self.channels = channels
        self.sensors = sensors
        self.workspace = workspace
        self.reactions = reactions
        self.auditCapacity = auditCapacity
    }

    public func reaction(to kind: FaultKind) -> Reaction {
        reactions[kind] ?? Self.defaultReactions[kind] ?? .stop(.zero)
    }

    func validate() throws {
        var names = Set<String>()
        for channel in channels {
            guard names.insert(channel.name).inserted else {
                throw GuardConfigurationError("channel \(channel.name) is declared twice")
            }
            switch (channel.limits, channel.safeValue) {
            case (.continuous(let l), .continuous(let safe)):
                try l.validate(channel: channel.name)
                if let min = l.min, safe < min { throw GuardConfigurationError("channel \(channel.name): safe value \(safe) is below min \(min)") }
                if let max = l.max, safe > max { throw GuardConfigurationError("channel \(channel.name): safe value \(safe) is above max \(max)") }
            case (.discrete(let l), .discrete(let safe)):
                if !l.allows(safe) { throw GuardConfigurationError("channel \(channel.name): safe state \(safe) is not an allowed state") }
                if let n = l.maxSwitchesPerMinute, n < 1 || n > 64 {
                    throw GuardConfigurationError("channel \(channel.name): maxSwitchesPerMinute must be 1…64")
                }
            default:
                throw GuardConfigurationError("channel \(channel.name): safe value kind does not match its limits")
            }
            for (origin, limits) in channel.originLimits {
                switch (channel.limits, limits) {
                case (.continuous, .continuous(let l)): try l.validate(channel: "\(channel.name)[\(origin)]")
                case (.discrete, .discrete): break
                default: throw GuardConfigurationError("channel \(channel.name): \(origin) limits are of the wrong kind")
                }
            }
            if !(channel.maxStepInterval > 0) || !channel.maxStepInterval.isFinite {
                throw GuardConfigurationError("channel \(channel.name): maxStepInterval must be a positive number of seconds")
            }
            if let rate = channel.stopRate, !(rate > 0) {
                throw GuardConfigurationError("channel \(channel.name): stopRate must be positive")
            }
        }
        if let w = workspace {
            if w.radius == nil && (w.polygon?.count ?? 0) < 3 {
                throw GuardConfigurationError("workspace needs a radius or a polygon of at least 3 points")
            }
            if w.warnDistance < 0 || w.stopDistance < 0 { throw GuardConfigurationError("workspace distances must be ≥ 0") }
        }
        guard auditCapacity >= 1 else { throw GuardConfigurationError("auditCapacity must be at least 1") }
        // IEC 60204-1: an emergency stop is category 0 or 1, never 2 (power kept on).
        switch reaction(to: .emergencyStopInput) {
        case .stop(.zero), .stop(.one): break
        default: throw GuardConfigurationError("the e-stop reaction must be a category 0 or 1 stop")
        }
        for kind in [FaultKind.estopDeviceLost, .runaway, .standstill, .dispatchStall, .powerOn, .remoteStop] {
            guard case .stop = reaction(to: kind) else {
                throw GuardConfigurationError("the reaction to \(kind) must be a stop")
            }
        }
        for kind in [FaultKind.runaway, .standstill] where reaction(to: kind) != .stop(.zero) {
            throw GuardConfigurationError("the reaction to \(kind) must be a category 0 stop")
        }
        if !(startupTimeout > .zero) { throw GuardConfigurationError("startupTimeout must be positive") }
        if !(maxApprovalValidity > .zero) { throw GuardConfigurationError("maxApprovalValidity must be positive") }
        if let age = maxTickAge, !(age > .zero) { throw GuardConfigurationError("maxTickAge must be positive") }
        for interlock in interlocks {
            guard sensors.contains(where: { $0.name == interlock.sensor }) else {
                throw GuardConfigurationError("interlock on \(interlock.sensor): not a required sensor")
            }
            guard interlock.min != nil || interlock.max != nil, !interlock.channels.isEmpty else {
                throw GuardConfigurationError("interlock on \(interlock.sensor) needs a limit and at least one channel")
            }
            for name in interlock.channels where !names.contains(name) {
                throw GuardConfigurationError("interlock on \(interlock.sensor): unknown channel \(name)")
            }
        }
        if let k = workspace?.kinematics {
            guard names.contains(k.leftChannel), names.contains(k.rightChannel), k.wheelRadius > 0 else {
                throw GuardConfigurationError("workspace kinematics: unknown wheel channels or wheel radius ≤ 0")
            }
        }
        for channel in channels {
            if let m = channel.motionMonitor, !(m.tolerance > 0) || !(m.time >= .zero) {
                throw GuardConfigurationError("channel \(channel.name): motion monitor needs a positive tolerance")
            }
        }
    }
}

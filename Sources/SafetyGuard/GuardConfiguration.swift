import RTScheduler

/// A channel's limits: continuous or discrete.
public enum ChannelLimits: Sendable, Equatable {
    case continuous(ContinuousLimits)
    case discrete(DiscreteLimits)
}

/// What the guard does about a fault.
public enum Reaction: Sendable, Equatable {
    /// Record it (audit) and carry on.
    case warn
    /// Zero motion: motion channels go to their safe value and refuse commands while the
    /// condition lasts. Not latched.
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

    public init(name: String, limits: ChannelLimits, originLimits: [CommandOrigin: ChannelLimits] = [:],
                safeValue: CommandValue? = nil, watchdogTimeout: Duration? = nil, stopRate: Double? = nil,
                isMotion: Bool = true, maxStepInterval: Double = 0.1) {
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
    }

    var effectiveStopRate: Double? {
        if let stopRate { return stopRate }
        if case .continuous(let l) = limits { return l.maxDecelerationRate ?? l.maxRate }
        return nil
    }
}

/// A sensor the guard requires to be fresh.
public struct RequiredSensor: Sendable, Equatable {
    public var name: String
    public var maxAge: Duration
    public var reaction: Reaction
    public init(name: String, maxAge: Duration, reaction: Reaction = .stop(.one)) {
        self.name = name
        self.maxAge = maxAge
        self.reaction = reaction
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

    public init(polygon: [Point]? = nil, radius: Double? = nil, center: Point = Point(x: 0, y: 0),
                warnDistance: Double = 0.5, stopDistance: Double = 0.5, stopCategory: StopCategory = .one) {
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

    public static let defaultReactions: [FaultKind: Reaction] = [
        .emergencyStopInput: .stop(.one),
        .deadlineFault: .stop(.one),
        .staleSensor: .stop(.one),
        .workspace: .stop(.one),
        .actuatorFailure: .stop(.zero),
        .connectionLost: .stop(.one),
        .commandWatchdog: .warn,
        .operatorRequest: .stop(.two),
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
    }
}

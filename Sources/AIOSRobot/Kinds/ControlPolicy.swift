import RTScheduler
import RobotConfig
import SafetyGuard

/// What a policy sees at each step, refreshed by the runtime on the dispatch thread just before
/// (in place: no allocation). Unknown is NaN, never a guess: a policy must treat it as "do not move".
public struct World: Sendable {
    /// Fresh values by sensor index (the guard's required sensors, in configuration order); NaN when
    /// silent, stale or invalid.
    public internal(set) var sensors: [Double]
    /// The odometry pose (odom frame); nil without odometry or before its first update.
    public internal(set) var pose: Pose?
    /// Gamepads (evdev inputs), in configuration order.
    public internal(set) var gamepads: [GamepadState]
    /// The guard is latched (every command gets a stop until a reset).
    public internal(set) var latched = false
    /// When the guard's latch was last reset; nil: never. A person's enabling action from before
    /// it (a deadman held through the stop) enables nothing after it.
    public internal(set) var lastReset: Instant?

    public struct Pose: Sendable, Equatable, BitwiseCopyable {
        public var x: Double
        public var y: Double
        public var yaw: Double
    }

    init(sensorCount: Int, gamepads: [GamepadState]) {
        sensors = Array(repeating: .nan, count: sensorCount)
        pose = nil
        self.gamepads = gamepads
    }
}

/// One evdev input's sticks and keys as the dispatch thread last saw them.
public struct GamepadState: Sendable {
    /// Normalised axes (−1…1 after deadzone, invert and scale), by the mapping's axis order; NaN
    /// until first reported.
    public internal(set) var axes: [Double]
    /// The deadman key's level: unknown after lost events (SYN_DROPPED) or the device's
    /// (re)opening until its next event (a real device's key state is read at open), released
    /// after the device's loss.
    public internal(set) var deadmanLevel = GamepadInput.KeyLevel.unknown
    /// The deadman key is known to be held.
    public var deadman: Bool { deadmanLevel == .pressed }
    /// The deadman key is known to be released (unknown is neither: it enables nothing and hands
    /// nothing back).
    public var deadmanReleased: Bool { deadmanLevel == .released }
    /// When the deadman was last pressed or released.
    public internal(set) var deadmanChangedAt: Instant?
    /// When the deadman was last pressed from released (an edge); nil: never.
    public internal(set) var deadmanPressedAt: Instant?
    /// When the device was last opened, came back or was lost; nil: never. Axes reported before it
    /// are forgotten (NaN): a stick's last position from before a loss is no position.
    public internal(set) var connectionChangedAt: Instant?
    /// When the `handback` key was last released, pressed and released with the deadman known
    /// released throughout; nil: never.
    public internal(set) var handbackAt: Instant?

    init(axisCount: Int) {
        axes = Array(repeating: .nan, count: axisCount)
    }

    /// What the reader side of `pad` holds now (dispatch thread, every step; no allocation).
    mutating func read(_ pad: GamepadInput) {
        func instant(_ nanoseconds: Int64) -> Instant? { nanoseconds > 0 ? Instant(nanoseconds: nanoseconds) : nil }  // 0: never
        deadmanLevel = pad.deadmanLevel.load(ordering: .acquiring)
        deadmanChangedAt = instant(pad.deadmanChangedAt.load(ordering: .acquiring))
        deadmanPressedAt = instant(pad.deadmanPressedAt.load(ordering: .acquiring))
        handbackAt = instant(pad.handbackAt.load(ordering: .acquiring))
        connectionChangedAt = instant(pad.connectionChangedAt.load(ordering: .acquiring))
        // The sticks after the keys: levels the reader set before the keys of their frame, so a
        // press seen here comes with axes at least as new as it (never the axes queue's lag).
        // NaN since the device was opened or lost until reported. Index loop: no iterator.
        var a = 0
        while a < axes.count && a < pad.axisLevels.count {
            axes[a] = pad.axisLevels[a].value
            a += 1
        }
    }
}

/// Up to four channel values, in the order of the policy's `channels` (no allocation per step).
public struct ChannelValues: Sendable, Equatable {
    public static let capacity = 4
    public private(set) var count: Int
    private var storage: (Double, Double, Double, Double)

    public init(_ values: Double...) {
        precondition(values.count <= Self.capacity, "at most \(Self.capacity) channels per policy")
        count = values.count
        storage = (values.count > 0 ? values[0] : 0, values.count > 1 ? values[1] : 0,
                   values.count > 2 ? values[2] : 0, values.count > 3 ? values[3] : 0)
    }

    /// Two values (a pair of wheels, a heater and a fan): policies build one every step, and the
    /// variadic form above would allocate its array each time. (Literals are ambiguous between the
    /// two: two zeros are `ChannelValues(count: 2)`.)
    public init(_ a: Double, _ b: Double) {
        count = 2
        storage = (a, b, 0, 0)
    }

    /// `count` zeros.
    public init(count: Int) {
        precondition(count >= 0 && count <= Self.capacity, "at most \(Self.capacity) channels per policy")
        self.count = count
        storage = (0, 0, 0, 0)
    }

    public static func == (a: ChannelValues, b: ChannelValues) -> Bool {
        a.count == b.count && (0..<a.count).allSatisfy { a[$0] == b[$0] }
    }

    public subscript(i: Int) -> Double {
        get {
            switch i {
            case 0: storage.0
            case 1: storage.1
            case 2: storage.2
            default: storage.3
            }
        }
        set {
            switch i {
            case 0: storage.0 = newValue
            case 1: storage.1 = newValue
            case 2: storage.2 = newValue
            default: storage.3 = newValue
            }
        }
    }
}

/// A policy that proposes values for its channels. A value type, stepped on the dispatch thread
/// under the control lock: it must not block, allocate per step or call out.
public protocol ControlPolicy: Sendable {
    /// The origin its commands carry (the guard applies that origin's envelope); read at every
    /// step, so a policy executing a plan's step says `planner` meanwhile.
    var origin: CommandOrigin { get }
    /// Values for its channels, or nil: no opinion now (the arbiter hands the channels to the next
    /// policy by priority).
    mutating func step(_ world: World, now: Instant) -> ChannelValues?
    /// A plan's step for it (docs/planner.md, "Execution"); policies that execute no ability keep
    /// the default, which ignores it.
    mutating func direct(_ directive: PlanDirective)
    /// How far it has come with its directive.
    var planReading: PlanReading { get }
}

/// A filter on whichever output wins its channels (e.g. no forward motion near an obstacle): it
/// is not a competing source. Returns whether it changed anything.
public protocol ControlFilter: Sendable {
    mutating func filter(_ values: inout ChannelValues, world: World, now: Instant) -> Bool
}

public enum PolicyBehaviour: Sendable {
    case source(any ControlPolicy)
    case filter(any ControlFilter)
}

/// A policy kind of the library: its configuration keys and how it is built. A new policy is one
/// file conforming to this plus one line in `RobotKinds.policies`.
public protocol PolicyKind {
    static var spec: KindSpec { get }
    static func make(_ settings: PolicySettings, context: PolicyBuildContext) throws -> PolicyBehaviour
}

/// What a policy kind may resolve while it is built: sensors, gamepads, the odometry geometry.
public struct PolicyBuildContext: Sendable {
    public let configuration: RobotConfiguration
    /// The guard's required sensors, in order (`World.sensors` indices).
    public let sensorNames: [String]
    /// Evdev inputs in order (`World.gamepads` indices) and their axis names.
    public let gamepads: [(input: String, axes: [String])]

    public func settings(of policy: PolicySettings) -> SettingsReader {
        SettingsReader(owner: "policy \(policy.name)", policy.settings)
    }

    public func sensor(_ name: String, for policy: PolicySettings) throws(KindError) -> Int {
        guard let i = sensorNames.firstIndex(of: name) else {
            throw KindError("policy \(policy.name): no sensor named \(name) (sensors: \(sensorNames.joined(separator: ", ")))")
        }
        return i
    }

    public func gamepad(_ input: String, for policy: PolicySettings) throws(KindError) -> Int {
        guard let i = gamepads.firstIndex(where: { $0.input == input }) else {
            throw KindError("policy \(policy.name): no evdev input named \(input)")
        }
        return i
    }

    public func axis(_ name: String, of gamepad: Int, for policy: PolicySettings) throws(KindError) -> Int {
        guard let i = gamepads[gamepad].axes.firstIndex(of: name) else {
            throw KindError("policy \(policy.name): input \(gamepads[gamepad].input) has no axis named \(name)")
        }
        return i
    }

    /// The policy's channels must be the odometry's wheels, left then right.
    public func wheels(for policy: PolicySettings) throws(KindError) -> OdometrySettings {
        guard let odometry = configuration.odometry else {
            throw KindError("policy \(policy.name): needs an `odometry` section (wheel geometry)")
        }
        guard policy.channels == [odometry.leftWheel, odometry.rightWheel] else {
            throw KindError("policy \(policy.name): channels must be [\(odometry.leftWheel), \(odometry.rightWheel)] (the odometry's wheels, left first)")
        }
        return odometry
    }
}

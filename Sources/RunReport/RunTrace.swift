/// One run, recorded for reporting from the simulator's ground truth. SI units throughout: seconds
/// since the simulator started, metres, radians, degrees Celsius. Value types only, so that the daemon
/// records it, a test builds one by hand, and both render or evaluate it the same way.
public struct RunTrace: Sendable, Equatable, Codable {
    public enum World: String, Sendable, Codable {
        case rover
        case iotRig = "iot-rig"
    }

    public var world: World
    /// Who ran: a robot's id or a description of the simulated one (shown in the title).
    public var robot: String
    /// Length of the run (s); fault windows without an end close here.
    public var duration: Double
    /// Seed of the simulator's noise, when there is one.
    public var seed: UInt64?
    /// Set for `world == .rover`.
    public var rover: RoverTrace?
    /// Set for `world == .iotRig`.
    public var rig: RigTrace?
    public var latches: [LatchEvent]
    public var resets: [ResetEvent]
    public var faults: [FaultWindow]

    public init(world: World, robot: String, duration: Double, seed: UInt64? = nil, rover: RoverTrace? = nil,
                rig: RigTrace? = nil, latches: [LatchEvent] = [], resets: [ResetEvent] = [], faults: [FaultWindow] = []) {
        self.world = world
        self.robot = robot
        self.duration = duration
        self.seed = seed
        self.rover = rover
        self.rig = rig
        self.latches = latches
        self.resets = resets
        self.faults = faults
    }
}

/// A point in the arena (m).
public struct Point2D: Sendable, Equatable, Codable {
    public var x: Double
    public var y: Double
    public init(x: Double, y: Double) {
        self.x = x
        self.y = y
    }
}

/// A pose in the arena (REP 103/105: x forward, y left, yaw counter-clockwise from x, radians).
public struct TracePose: Sendable, Equatable, Codable {
    public var x: Double
    public var y: Double
    public var yaw: Double
    public init(x: Double, y: Double, yaw: Double) {
        self.x = x
        self.y = y
        self.yaw = yaw
    }
}

/// The rover's world as the simulator defines it (`Arena`): a walled rectangle and round obstacles.
public struct ArenaShape: Sendable, Equatable, Codable {
    /// A round obstacle (a pillar).
    public struct Circle: Sendable, Equatable, Codable {
        public var x: Double
        public var y: Double
        public var radius: Double
        public init(x: Double, y: Double, radius: Double) {
            self.x = x
            self.y = y
            self.radius = radius
        }
    }

    /// The walls' inner faces.
    public var minX: Double
    public var minY: Double
    public var maxX: Double
    public var maxY: Double
    public var obstacles: [Circle]

    public init(minX: Double, minY: Double, maxX: Double, maxY: Double, obstacles: [Circle] = []) {
        self.minX = minX
        self.minY = minY
        self.maxX = maxX
        self.maxY = maxY
        self.obstacles = obstacles
    }

    enum CodingKeys: String, CodingKey {
        case minX = "min_x", minY = "min_y", maxX = "max_x", maxY = "max_y", obstacles
    }
}

/// Ground truth of the rover at one instant, and whether robotd had the e-stop latched then.
public struct PathSample: Sendable, Equatable, Codable {
    public var t: Double
    public var x: Double
    public var y: Double
    public var yaw: Double
    public var latched: Bool
    public init(t: Double, x: Double, y: Double, yaw: Double, latched: Bool) {
        self.t = t
        self.x = x
        self.y = y
        self.yaw = yaw
        self.latched = latched
    }
}

/// A new contact of the body with a wall or an obstacle.
public struct CollisionEvent: Sendable, Equatable, Codable {
    public var t: Double
    public var x: Double
    public var y: Double
    public init(t: Double, x: Double, y: Double) {
        self.t = t
        self.x = x
        self.y = y
    }
}

public struct RoverTrace: Sendable, Equatable, Codable {
    public var arena: ArenaShape
    /// The body's footprint radius (m), drawn at the start pose.
    public var bodyRadius: Double
    public var start: TracePose
    /// Points to pass in order (waypoint-following scenarios); numbered from 1.
    public var waypoints: [Point2D]
    /// In time order.
    public var samples: [PathSample]
    public var collisions: [CollisionEvent]

    public init(arena: ArenaShape, bodyRadius: Double = 0.18, start: TracePose, waypoints: [Point2D] = [],
                samples: [PathSample] = [], collisions: [CollisionEvent] = []) {
        self.arena = arena
        self.bodyRadius = bodyRadius
        self.start = start
        self.waypoints = waypoints
        self.samples = samples
        self.collisions = collisions
    }

    enum CodingKeys: String, CodingKey {
        case arena, bodyRadius = "body_radius", start, waypoints, samples, collisions
    }
}

/// Ground truth of the rig at one instant: the chamber, the relays' outputs, and robotd's latch.
public struct RigSample: Sendable, Equatable, Codable {
    public var t: Double
    /// °C, the chamber's true temperature (not the noisy reading).
    public var temperature: Double
    /// °C, what the thermostat aims for.
    public var setpoint: Double
    public var heaterOn: Bool
    /// 0…1.
    public var fanDuty: Double
    public var latched: Bool
    public init(t: Double, temperature: Double, setpoint: Double, heaterOn: Bool, fanDuty: Double, latched: Bool) {
        self.t = t
        self.temperature = temperature
        self.setpoint = setpoint
        self.heaterOn = heaterOn
        self.fanDuty = fanDuty
        self.latched = latched
    }

    enum CodingKeys: String, CodingKey {
        case t, temperature, setpoint, heaterOn = "heater_on", fanDuty = "fan_duty", latched
    }
}

public struct RigTrace: Sendable, Equatable, Codable {
    /// The thermostat's hysteresis (°C): drawn as a band around the setpoint.
    public var band: Double
    /// In time order.
    public var samples: [RigSample]
    public init(band: Double, samples: [RigSample] = []) {
        self.band = band
        self.samples = samples
    }
}

/// The guard latched its stop (a new latch or an escalation). x and y: where the rover was (ground
/// truth), nil for the rig or when no path sample covers the instant.
public struct LatchEvent: Sendable, Equatable, Codable {
    public var t: Double
    public var x: Double?
    public var y: Double?
    /// The cause as robotd names it (e.g. "estop-input", "stale-sensor").
    public var cause: String
    /// Stop category 0, 1 or 2.
    public var category: Int
    public init(t: Double, x: Double? = nil, y: Double? = nil, cause: String, category: Int) {
        self.t = t
        self.x = x
        self.y = y
        self.cause = cause
        self.category = category
    }
}

/// The guard released its latch (a reset that was not refused).
public struct ResetEvent: Sendable, Equatable, Codable {
    public var t: Double
    public init(t: Double) { self.t = t }
}

/// A fault injected on [start, end); end nil: to the end of the run.
public struct FaultWindow: Sendable, Equatable, Codable {
    /// e.g. "serial-unplug", "policy-hang".
    public var kind: String
    public var start: Double
    public var end: Double?
    public init(kind: String, start: Double, end: Double? = nil) {
        self.kind = kind
        self.start = start
        self.end = end
    }
}

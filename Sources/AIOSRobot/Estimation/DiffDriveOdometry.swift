import Foundation

/// Dead reckoning for a differential-drive base from cumulative wheel-encoder counts: the pose
/// estimate (odom frame, REP 105) the guard's workspace check needs. Counts are 32-bit and wrap, so
/// deltas are taken modulo 2³². The first reading only sets the reference.
public struct DiffDriveOdometry: Sendable, Equatable {
    public struct Geometry: Sendable, Equatable {
        public var wheelRadius: Double
        public var trackWidth: Double
        public var ticksPerRevolution: Double
        public init(wheelRadius: Double = 0.05, trackWidth: Double = 0.30, ticksPerRevolution: Double = 2048) {
            self.wheelRadius = wheelRadius
            self.trackWidth = trackWidth
            self.ticksPerRevolution = ticksPerRevolution
        }
    }

    public let geometry: Geometry
    public private(set) var x: Double
    public private(set) var y: Double
    public private(set) var yaw: Double
    public private(set) var updates = 0
    /// Wheel speeds (rad/s) over the last interval, when device times were given; NaN before.
    public private(set) var wheelSpeeds = (left: Double.nan, right: Double.nan)
    private var last: (left: Int32, right: Int32)?
    private var lastMicros: UInt32?

    public init(geometry: Geometry = Geometry(), x: Double = 0, y: Double = 0, yaw: Double = 0) {
        self.geometry = geometry
        self.x = x
        self.y = y
        self.yaw = yaw
    }

    /// `deviceTimeMicros`: the encoder's own 32-bit microsecond clock (wraps), for wheel speeds.
    public mutating func update(leftTicks: Int32, rightTicks: Int32, deviceTimeMicros: UInt32? = nil) {
        defer {
            last = (leftTicks, rightTicks)
            lastMicros = deviceTimeMicros
        }
        guard let last else { return }
        updates += 1
        if let now = deviceTimeMicros, let before = lastMicros {
            if now &- before > 0 {
                let seconds = Double(now &- before) / 1e6
                let radiansPerTick = 2 * Double.pi / geometry.ticksPerRevolution
                wheelSpeeds = (Double(leftTicks &- last.left) * radiansPerTick / seconds,
                               Double(rightTicks &- last.right) * radiansPerTick / seconds)
            } else {
                // A device clock that did not move: no speed can be measured (never the old one).
                wheelSpeeds = (.nan, .nan)
            }
        }
        let metresPerTick = 2 * Double.pi * geometry.wheelRadius / geometry.ticksPerRevolution
        let left = Double(leftTicks &- last.left) * metresPerTick
        let right = Double(rightTicks &- last.right) * metresPerTick
        let distance = (left + right) / 2
        let turn = (right - left) / geometry.trackWidth
        let heading = yaw + turn / 2  // midpoint, as the motion was a circular arc
        x += distance * cos(heading)
        y += distance * sin(heading)
        yaw = remainder(yaw + turn, 2 * Double.pi)
    }

    public static func == (a: DiffDriveOdometry, b: DiffDriveOdometry) -> Bool {
        a.geometry == b.geometry && a.lastMicros == b.lastMicros && a.x == b.x && a.y == b.y && a.yaw == b.yaw && a.updates == b.updates
            && a.last?.left == b.last?.left && a.last?.right == b.last?.right
    }
}

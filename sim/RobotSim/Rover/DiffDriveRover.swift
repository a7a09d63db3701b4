import Foundation

/// A planar pose in the odom frame (REP 105): metres and radians, yaw counter-clockwise from x.
public struct Pose2D: Sendable, Equatable, Codable {
    public var x: Double
    public var y: Double
    public var yaw: Double
    public init(x: Double = 0, y: Double = 0, yaw: Double = 0) {
        self.x = x
        self.y = y
        self.yaw = yaw
    }
}

public struct RoverParameters: Sendable, Equatable {
    public var wheelRadius = 0.05
    /// Distance between the wheels' contact points.
    public var trackWidth = 0.30
    /// The body's footprint for collisions.
    public var bodyRadius = 0.18
    /// What the motors can reach (rad/s); the driver firmware clamps commands to it.
    public var maxWheelSpeed = 20.0
    /// First-order lag of an energised motor toward its commanded speed.
    public var motorTimeConstant = 0.05
    /// How fast a de-energised (coasting) wheel spins down.
    public var coastTimeConstant = 0.25
    public var ticksPerRevolution = 2048.0
    public init() {}
}

/// What the motor driver applies to one wheel.
public struct WheelDrive: Sendable, Equatable {
    public var speed: Double
    public var energised: Bool
    public init(speed: Double = 0, energised: Bool = false) {
        self.speed = speed
        self.energised = energised
    }
}

/// A differential-drive rover's rigid-body state and its integration. Pure value type: the same
/// inputs give the same trajectory bit for bit.
public struct DiffDriveRover: Sendable, Equatable {
    public let parameters: RoverParameters
    public private(set) var pose: Pose2D
    /// Wheel angular speeds (rad/s), left and right.
    public private(set) var wheelSpeed: SIMD2<Double> = .zero
    /// Accumulated wheel angles (rad), what the encoders count.
    public private(set) var wheelAngle: SIMD2<Double> = .zero
    /// Body velocities in base_link: forward (m/s) and yaw rate (rad/s).
    public private(set) var linearVelocity = 0.0
    public private(set) var angularVelocity = 0.0
    /// Forward acceleration over the last step (m/s²).
    public private(set) var linearAcceleration = 0.0
    /// Times the body hit a wall or obstacle (counted on each new contact).
    public private(set) var collisions = 0
    public private(set) var inContact = false
    /// Distance travelled (m), for tests and reports.
    public private(set) var odometer = 0.0

    public init(parameters: RoverParameters = RoverParameters(), pose: Pose2D = Pose2D()) {
        self.parameters = parameters
        self.pose = pose
    }

    public mutating func step(dt: Double, left: WheelDrive, right: WheelDrive, arena: Arena) {
        guard dt > 0 else { return }
        let before = linearVelocity
        wheelSpeed = SIMD2(respond(wheelSpeed.x, left, dt), respond(wheelSpeed.y, right, dt))
        let r = parameters.wheelRadius
        let v = r * (wheelSpeed.x + wheelSpeed.y) / 2
        let w = r * (wheelSpeed.y - wheelSpeed.x) / parameters.trackWidth
        // Midpoint heading integration: exact enough at 1 ms steps and symmetric in time.
        let mid = pose.yaw + w * dt / 2
        let next = Pose2D(x: pose.x + v * dt * cos(mid), y: pose.y + v * dt * sin(mid),
                          yaw: remainder(pose.yaw + w * dt, 2 * Double.pi))
        if arena.collides(x: next.x, y: next.y, radius: parameters.bodyRadius) {
            // A stall against an obstacle: the body stops, the wheels stop with it.
            if !inContact { collisions += 1 }
            inContact = true
            wheelSpeed = .zero
            linearVelocity = 0
            angularVelocity = 0
        } else {
            // Contact ends only with a clear centimetre: creeping along a wall is one collision.
            if inContact && !arena.collides(x: next.x, y: next.y, radius: parameters.bodyRadius + 0.01) { inContact = false }
            odometer += abs(v) * dt
            pose = next
            linearVelocity = v
            angularVelocity = w
            wheelAngle += wheelSpeed * dt
        }
        linearAcceleration = (linearVelocity - before) / dt
    }

    private func respond(_ speed: Double, _ drive: WheelDrive, _ dt: Double) -> Double {
        let target = drive.energised ? min(max(drive.speed, -parameters.maxWheelSpeed), parameters.maxWheelSpeed) : 0
        let tau = drive.energised ? parameters.motorTimeConstant : parameters.coastTimeConstant
        return target + (speed - target) * exp(-dt / tau)
    }

    /// Encoder counts (cumulative, wrapping like a 32-bit hardware counter).
    public var encoderTicks: (left: Int32, right: Int32) {
        let k = parameters.ticksPerRevolution / (2 * Double.pi)
        return (Int32(truncatingIfNeeded: Int64((wheelAngle.x * k).rounded(.towardZero))),
                Int32(truncatingIfNeeded: Int64((wheelAngle.y * k).rounded(.towardZero))))
    }
}

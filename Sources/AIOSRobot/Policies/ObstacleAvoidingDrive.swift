/// A reactive differential-drive policy: cruise forward, slow down as the forward range sensor
/// closes in, turn on the spot when too close, and keep turning until the way is clear by a
/// margin (hysteresis, so it does not dither at the threshold). Pure value type: the same ranges
/// give the same commands, which the lockstep tests rely on. Outputs wheel speeds (rad/s); the
/// guard then limits them.
public struct ObstacleAvoidingDrive: Sendable, Equatable {
    public struct Parameters: Sendable, Equatable {
        /// Wheel speed when the way is clear (rad/s).
        public var cruise = 10.0
        /// Below this range (m) the speed scales down linearly…
        public var slowRange = 1.2
        /// …and below this the rover turns on the spot…
        public var turnRange = 0.45
        /// …until the range is above this again.
        public var clearRange = 0.9
        /// Wheel speed while turning (rad/s), left wheel backwards: a left (counter-clockwise) turn.
        public var turnSpeed = 5.0
        public init() {}
    }

    public enum Mode: Sendable, Equatable { case cruising, turning }

    public let parameters: Parameters
    public private(set) var mode = Mode.cruising

    public init(parameters: Parameters = Parameters()) { self.parameters = parameters }

    /// The distance a range reading and its status stand for (docs/serial-protocol.md): no echo is
    /// "nothing within the sensor's maximum range" — a finite number, never +∞; a faulty sensor or
    /// a non-finite value is no reading at all (NaN), which the guard refuses as a sample.
    public static func effectiveRange(value: Double, status: Int, maximum: Double) -> Double {
        switch status {
        case 0: value.isFinite ? max(0, value) : .nan
        case 2: maximum
        default: .nan
        }
    }

    /// Wheel speeds for the latest forward range (m). An unknown range (NaN: silent, stale or
    /// faulty sensor) is treated as blocked: the rover does not move.
    public mutating func step(range r: Double) -> (left: Double, right: Double) {
        let p = parameters
        guard r.isFinite else { return (0, 0) }
        switch mode {
        case .cruising where r < p.turnRange: mode = .turning
        case .turning where r > p.clearRange: mode = .cruising
        default: break
        }
        if mode == .turning { return (-p.turnSpeed, p.turnSpeed) }
        let scale = r >= p.slowRange ? 1 : max(0.2, (r - p.turnRange) / (p.slowRange - p.turnRange))
        return (p.cruise * scale, p.cruise * scale)
    }
}

import RTScheduler

/// Limits of a continuous channel, in the channel's own terms: `min`/`max` bound the value, and
/// the derivative limits bound its first, second and third time derivatives (units/s, /s², /s³).
/// nil means "no limit". Build them with the ros2_control-named constructors below, which say
/// what each derivative means for a position, velocity, effort or duty channel.
public struct ContinuousLimits: Sendable, Equatable {
    public var min: Double?
    public var max: Double?
    /// |dv/dt| — velocity of a position channel, acceleration of a velocity channel.
    public var maxRate: Double?
    /// |dv/dt| while |v| shrinks — deceleration of a velocity channel (defaults to `maxRate`).
    public var maxDecelerationRate: Double?
    /// |d²v/dt²| — acceleration of a position channel, jerk of a velocity channel.
    public var maxSecondDerivative: Double?
    /// |d³v/dt³| — jerk of a position channel.
    public var maxThirdDerivative: Double?

    public init(min: Double? = nil, max: Double? = nil, maxRate: Double? = nil, maxDecelerationRate: Double? = nil,
                maxSecondDerivative: Double? = nil, maxThirdDerivative: Double? = nil) {
        self.min = min
        self.max = max
        self.maxRate = maxRate
        self.maxDecelerationRate = maxDecelerationRate
        self.maxSecondDerivative = maxSecondDerivative
        self.maxThirdDerivative = maxThirdDerivative
    }

    public static func position(minPosition: Double? = nil, maxPosition: Double? = nil, maxVelocity: Double? = nil,
                                maxAcceleration: Double? = nil, maxJerk: Double? = nil) -> ContinuousLimits {
        ContinuousLimits(min: minPosition, max: maxPosition, maxRate: maxVelocity,
                         maxSecondDerivative: maxAcceleration, maxThirdDerivative: maxJerk)
    }

    public static func velocity(maxVelocity: Double? = nil, maxAcceleration: Double? = nil,
                                maxDeceleration: Double? = nil, maxJerk: Double? = nil) -> ContinuousLimits {
        ContinuousLimits(min: maxVelocity.map { -$0 }, max: maxVelocity, maxRate: maxAcceleration,
                         maxDecelerationRate: maxDeceleration, maxSecondDerivative: maxJerk)
    }

    public static func effort(maxEffort: Double? = nil, maxEffortRate: Double? = nil) -> ContinuousLimits {
        ContinuousLimits(min: maxEffort.map { -$0 }, max: maxEffort, maxRate: maxEffortRate)
    }

    /// PWM duty cycle in 0…1 (or a narrower range).
    public static func duty(min: Double = 0, max: Double = 1, maxRate: Double? = nil) -> ContinuousLimits {
        ContinuousLimits(min: min, max: max, maxRate: maxRate)
    }

    /// The tighter of two envelopes, limit by limit (an origin's envelope can only narrow).
    public func tightened(by other: ContinuousLimits) -> ContinuousLimits {
        func lower(_ a: Double?, _ b: Double?) -> Double? { a.flatMap { x in b.map { Swift.min(x, $0) } ?? x } ?? b }
        func higher(_ a: Double?, _ b: Double?) -> Double? { a.flatMap { x in b.map { Swift.max(x, $0) } ?? x } ?? b }
        return ContinuousLimits(min: higher(min, other.min), max: lower(max, other.max),
                                maxRate: lower(maxRate, other.maxRate),
                                maxDecelerationRate: lower(maxDecelerationRate ?? maxRate, other.maxDecelerationRate ?? other.maxRate),
                                maxSecondDerivative: lower(maxSecondDerivative, other.maxSecondDerivative),
                                maxThirdDerivative: lower(maxThirdDerivative, other.maxThirdDerivative))
    }

    func validate(channel: String) throws {
        for (name, value) in [("maxRate", maxRate), ("maxDecelerationRate", maxDecelerationRate),
                              ("maxSecondDerivative", maxSecondDerivative), ("maxThirdDerivative", maxThirdDerivative)] {
            if let value, !(value > 0) || !value.isFinite {
                throw GuardConfigurationError("channel \(channel): \(name) must be a positive finite number, got \(value)")
            }
        }
        if let min, let max, !(min <= max) {
            throw GuardConfigurationError("channel \(channel): min \(min) is above max \(max)")
        }
        if let min, !min.isFinite { throw GuardConfigurationError("channel \(channel): min must be finite") }
        if let max, !max.isFinite { throw GuardConfigurationError("channel \(channel): max must be finite") }
    }
}

/// Limits of a discrete channel (relay, heater, compressor, mode switch).
public struct DiscreteLimits: Sendable, Equatable {
    /// State indices that may be commanded (bit i = state i allowed); state 0 is "off".
    public var allowedStates: UInt64
    /// A state other than off must be held at least this long before changing.
    public var minOnTime: Duration?
    /// Off must be held at least this long before switching on.
    public var minOffTime: Duration?
    /// At most this many state changes in any 60 s window (≤ 64).
    public var maxSwitchesPerMinute: Int?

    public init(allowedStates: [Int] = [0, 1], minOnTime: Duration? = nil, minOffTime: Duration? = nil,
                maxSwitchesPerMinute: Int? = nil) {
        self.allowedStates = allowedStates.reduce(0) { $1 >= 0 && $1 < 64 ? $0 | (1 << UInt64($1)) : $0 }
        self.minOnTime = minOnTime
        self.minOffTime = minOffTime
        self.maxSwitchesPerMinute = maxSwitchesPerMinute
    }

    public func allows(_ state: Int) -> Bool { state >= 0 && state < 64 && allowedStates & (1 << UInt64(state)) != 0 }

    public func tightened(by other: DiscreteLimits) -> DiscreteLimits {
        var result = self
        result.allowedStates &= other.allowedStates
        result.minOnTime = [minOnTime, other.minOnTime].compactMap { $0 }.max()
        result.minOffTime = [minOffTime, other.minOffTime].compactMap { $0 }.max()
        result.maxSwitchesPerMinute = [maxSwitchesPerMinute, other.maxSwitchesPerMinute].compactMap { $0 }.min()
        return result
    }
}

public struct GuardConfigurationError: Error, CustomStringConvertible, Equatable {
    public let description: String
    public init(_ description: String) { self.description = description }
}

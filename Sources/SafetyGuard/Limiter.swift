/// The continuous limiter: a pure function of (limits, last approved state, dt, request).
///
/// Every limit is an interval of admissible values for this step, so the admissible set is their
/// intersection and the approved value is the request clamped into it — the smallest change that
/// satisfies every limit, and an in-limits request passes unchanged. Limits are intersected in
/// priority order: range, rate (and deceleration), second derivative, braking, third derivative.
/// If a lower-priority interval does not meet what is left, it yields (`.yielded` is reported):
/// the rate never yields; the range yields only when the last value is already outside it (a
/// tighter per-origin envelope), and then the value moves back toward it at the rate limit.
public enum Limiter {
    /// The last approved values: value, first and second derivative, and how many approvals
    /// they rest on (derivatives need that many samples to be meaningful).
    public struct State: Sendable, Equatable {
        public var value: Double
        public var rate: Double
        public var second: Double
        public var samples: Int

        public init(value: Double, rate: Double = 0, second: Double = 0, samples: Int = 1) {
            self.value = value
            self.rate = rate
            self.second = second
            self.samples = samples
        }

        public static let none = State(value: 0, samples: 0)
    }

    public struct Output: Sendable, Equatable {
        public var value: Double
        public var reasons: ClampReasons
        public var state: State
    }

    /// Limits `requested` given the previous approved `state`, `dt` seconds later.
    /// The admissible interval as limits narrow it. A struct with a mutating method rather than
    /// a capturing local function: captured variables are heap-boxed in unoptimised builds.
    struct Admissible {
        let requested: Double
        var lo = -Double.infinity
        var hi = Double.infinity
        var reasons: ClampReasons = []

        /// Narrows [lo, hi] by [a, b] unless that would empty it (then the limit yields). A limit
        /// that the request falls outside of is named in the reasons.
        mutating func intersect(_ a: Double, _ b: Double, _ reason: ClampReasons) {
            let newLo = Swift.max(lo, a)
            let newHi = Swift.min(hi, b)
            guard newLo <= newHi else { reasons.insert(.yielded); return }
            lo = newLo
            hi = newHi
            if requested < a || requested > b { reasons.insert(reason) }
        }
    }

    /// Braking: after this step the range boundary must still be reachable at the second-derivative
    /// limit A: (v + r·dt) + r²/(2A) ≤ boundary, i.e. r ≤ A·(−dt + √(dt² + 2d/A)). If the previous
    /// step kept that, braking at A·dt keeps it again for any dt, so this never yields to the
    /// acceleration interval (docs/safety.md has the short proof).
    static func brakingRate(distance: Double, second: Double, step: Double) -> Double {
        let d = Swift.max(distance, 0)
        return second * (-step + (step * step + 2 * d / second).squareRoot())
    }

    /// Limits `requested` given the previous approved `state`, `dt` seconds later. Allocation-free.
    public static func limit(_ requested: Double, limits: ContinuousLimits, state: State, dt: Double) -> Output {
        var set = Admissible(requested: requested)
        let hasHistory = state.samples >= 1
        let step = Swift.max(dt, 0)
        // Rate first: it never yields. Then range: when the last value lies outside the range (an
        // origin's narrower envelope, e.g. a planner command after a faster policy), the value
        // moves back toward the range as fast as the rate allows and no faster — the range yields
        // for this step rather than the rate (no step change of a wheel's speed).
        if hasHistory, let up = limits.maxRate {
            if step > 0 {
                // Moving toward zero is deceleration for a velocity channel; its limit may differ.
                let down = limits.maxDecelerationRate ?? up
                let decelerating = (state.value > 0 && requested < state.value) || (state.value < 0 && requested > state.value)
                let allowDown = state.value > 0 ? down : up
                let allowUp = state.value < 0 ? down : up
                set.intersect(state.value - allowDown * step, state.value + allowUp * step,
                              decelerating && limits.maxDecelerationRate != nil ? .deceleration : .rate)
            } else {
                set.intersect(state.value, state.value, .rate)  // no time has passed: no change is allowed
            }
        }
        let rangeLo = limits.min ?? -.infinity, rangeHi = limits.max ?? .infinity
        if set.lo > rangeHi {
            set.hi = set.lo
            set.reasons.insert(.range); set.reasons.insert(.yielded)
        } else if set.hi < rangeLo {
            set.lo = set.hi
            set.reasons.insert(.range); set.reasons.insert(.yielded)
        } else {
            set.intersect(rangeLo, rangeHi, .range)
        }
        if hasHistory && step > 0 {
            if state.samples >= 2, let second = limits.maxSecondDerivative {
                set.intersect(state.value + (state.rate - second * step) * step,
                              state.value + (state.rate + second * step) * step, .acceleration)
                var upLimit = Double.infinity
                var downLimit = -Double.infinity
                if let max = limits.max {
                    upLimit = state.value + brakingRate(distance: max - state.value, second: second, step: step) * step
                }
                if let min = limits.min {
                    downLimit = state.value - brakingRate(distance: state.value - min, second: second, step: step) * step
                }
                set.intersect(downLimit, upLimit, .braking)
            }
            if state.samples >= 3, let third = limits.maxThirdDerivative {
                let aLo = state.second - third * step
                let aHi = state.second + third * step
                set.intersect(state.value + (state.rate + aLo * step) * step,
                              state.value + (state.rate + aHi * step) * step, .jerk)
            }
        }

        let value = Swift.min(Swift.max(requested, set.lo), set.hi)
        var reasons = set.reasons
        if value == requested { reasons.subtract(.limitReasons) }

        var next = State(value: value, rate: 0, second: 0, samples: Swift.min(state.samples + 1, 3))
        if hasHistory && step > 0 {
            next.rate = (value - state.value) / step
            next.second = state.samples >= 2 ? (next.rate - state.rate) / step : 0
        } else if hasHistory {
            next = state  // zero dt: nothing moved, derivatives unchanged
        }
        return Output(value: value, reasons: reasons, state: next)
    }
}

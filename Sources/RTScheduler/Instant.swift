/// A point on the scheduler's clock, in nanoseconds since that clock's epoch.
///
/// Deadlines are absolute `Instant`s. For `MonotonicClock` the epoch is CLOCK_MONOTONIC's (boot);
/// for `VirtualClock` it is zero. Instants from different clocks must not be compared.
public struct Instant: BitwiseCopyable, Comparable, Hashable, Sendable, CustomStringConvertible {
    public var nanoseconds: Int64

    @inlinable public init(nanoseconds: Int64) { self.nanoseconds = nanoseconds }

    public static let zero = Instant(nanoseconds: 0)
    /// Later than every real instant: "no deadline".
    public static let distantFuture = Instant(nanoseconds: .max)

    @inlinable public static func < (a: Instant, b: Instant) -> Bool { a.nanoseconds < b.nanoseconds }

    /// Saturating: adding to `distantFuture` stays there.
    @inlinable public static func + (a: Instant, b: Duration) -> Instant {
        a.advanced(byNanoseconds: b.nanoseconds)
    }

    @inlinable public func advanced(byNanoseconds delta: Int64) -> Instant {
        let (sum, overflow) = nanoseconds.addingReportingOverflow(delta)
        return Instant(nanoseconds: overflow ? (delta > 0 ? .max : .min) : sum)
    }

    /// `a - b` as a duration.
    @inlinable public static func - (a: Instant, b: Instant) -> Duration {
        .nanoseconds(a.nanoseconds &- b.nanoseconds)
    }

    @inlinable public func nanoseconds(since other: Instant) -> Int64 { nanoseconds &- other.nanoseconds }

    public var description: String { "\(nanoseconds)ns" }
}

extension Duration {
    /// The duration in whole nanoseconds, saturating at Int64's range.
    @inlinable public var nanoseconds: Int64 {
        let (seconds, attoseconds) = components
        let (whole, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        if overflow { return seconds > 0 ? .max : .min }
        let (sum, overflow2) = whole.addingReportingOverflow(attoseconds / 1_000_000_000)
        if overflow2 { return seconds > 0 ? .max : .min }
        return sum
    }
}

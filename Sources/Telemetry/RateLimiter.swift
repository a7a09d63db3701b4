import RTScheduler

/// A token bucket for events (miss events, safety events): `rate` per second on average, bursts of
/// up to `burst`. What it refuses is counted, and the count since the last admitted event rides
/// on the next one, so a consumer knows how many it did not see.
public struct EventRateLimiter: Sendable, Equatable {
    public let rate: Double
    public let burst: Double
    private var tokens: Double
    private var last: Instant?
    /// Refused (or dropped after admission, `noteDropped`) since the last admitted event.
    public private(set) var pendingSuppressed: UInt64 = 0
    /// Refused or dropped since start.
    public private(set) var totalSuppressed: UInt64 = 0
    public private(set) var admitted: UInt64 = 0

    public init(perSecond rate: Double, burst: Double? = nil) {
        precondition(rate > 0, "a rate limit needs a positive rate")
        self.rate = rate
        self.burst = max(1, burst ?? rate)
        tokens = self.burst
    }

    /// An event at `now` (of `weight` records: a summary counts as its records): admitted, with
    /// how many were suppressed since the previous admitted event; or nil (suppressed, counted).
    public mutating func admit(at now: Instant, weight: UInt64 = 1) -> UInt64? {
        if let last, now > last {
            tokens = min(burst, tokens + Double(now.nanoseconds(since: last)) / 1e9 * rate)
        }
        if last.map({ now > $0 }) ?? true { last = now }
        guard tokens >= 1 else {
            pendingSuppressed &+= weight
            totalSuppressed &+= weight
            return nil
        }
        tokens -= 1
        admitted &+= 1
        let carried = pendingSuppressed
        pendingSuppressed = 0
        return carried
    }

    /// An admitted event whose message was then dropped (queue full, no connection): it and what
    /// it carried count as suppressed, carried by the next one.
    public mutating func noteDropped(weight: UInt64 = 1, carried: UInt64) {
        admitted &-= 1
        pendingSuppressed &+= weight &+ carried
        totalSuppressed &+= weight
    }
}

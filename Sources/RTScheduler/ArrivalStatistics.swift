import Synchronization

/// How often posts arrive at one or more sources (an input's): counts, the longest interval
/// between two arrivals in the current window, and gaps (intervals longer than a threshold), for
/// telemetry. Updated by producers (reader threads) when a `SourceHandle` made with
/// `observed(by:)` posts: a few relaxed atomics, no lock, no allocation; never on the dispatch
/// thread. Read from any thread.
public final class ArrivalStatistics: Sendable {
    /// An interval between two arrivals longer than this is a gap; nil: gaps are not counted.
    public let gapThreshold: Duration?
    private let gapThresholdNs: Int64
    private let arrivals = Atomic<UInt64>(0)
    private let gaps = Atomic<UInt64>(0)
    /// Of the latest arrival (ns on the scheduler's clock); 0: none yet.
    private let lastArrival = Atomic<Int64>(0)
    /// The longest interval since the window's reader last took it (`takeWindowMaxInterval`).
    private let windowMaxInterval = Atomic<Int64>(0)

    public init(gapThreshold: Duration?) {
        self.gapThreshold = gapThreshold
        gapThresholdNs = gapThreshold?.nanoseconds ?? .max
    }

    /// Any producer thread. Arrivals out of order (two producers) give no interval.
    @inline(__always) public func note(_ release: Instant) {
        arrivals.add(1, ordering: .relaxed)
        let t = release.nanoseconds
        let previous = lastArrival.exchange(t, ordering: .relaxed)
        guard previous > 0, t > previous else { return }
        let interval = t - previous
        if interval > windowMaxInterval.load(ordering: .relaxed) { windowMaxInterval.store(interval, ordering: .relaxed) }
        if interval > gapThresholdNs { gaps.add(1, ordering: .relaxed) }
    }

    public var count: UInt64 { arrivals.load(ordering: .relaxed) }
    public var gapCount: UInt64 { gaps.load(ordering: .relaxed) }
    /// The latest arrival, nil before the first.
    public var last: Instant? {
        let t = lastArrival.load(ordering: .relaxed)
        return t > 0 ? Instant(nanoseconds: t) : nil
    }

    /// The longest interval since the previous call (0: fewer than two arrivals), for the one
    /// reader that keeps windows (telemetry).
    public func takeWindowMaxInterval() -> Duration {
        .nanoseconds(windowMaxInterval.exchange(0, ordering: .relaxed))
    }
}

import Histogram
import Synchronization

/// A latency histogram that the dispatch thread records into and any other thread can read,
/// without copying or allocating on the recording side.
///
/// The writer records into an "active" interval histogram under a lock held for a few
/// instructions. A reader swaps in a fresh histogram (allocated on the reader's thread), then adds
/// the interval into its own cumulative histogram — HdrHistogram's interval-recorder pattern.
public final class LatencyRecorder: Sendable {
    /// Values are nanoseconds; anything above this is recorded as this.
    public static let highestTrackable: UInt64 = 60_000_000_000

    private let active: Mutex<Histogram<UInt64>>
    private let cumulative: Mutex<Histogram<UInt64>>

    public init() {
        active = Mutex(Self.makeHistogram())
        cumulative = Mutex(Self.makeHistogram())
    }

    static func makeHistogram() -> Histogram<UInt64> {
        Histogram(lowestDiscernibleValue: 1, highestTrackableValue: highestTrackable,
                  numberOfSignificantValueDigits: .two)
    }

    /// Samples not recorded because a reader was swapping the histogram at that instant.
    public let skipped = Atomic<UInt64>(0)

    /// Real-time safe: no allocation, and never a wait: the lock is shared only with a reader's
    /// pointer swap, and if that swap is under way this one sample is skipped and counted rather
    /// than waited for (the recording thread is the dispatch thread).
    @inline(__always) public func record(nanoseconds: Int64) {
        let value = UInt64(clamping: max(0, nanoseconds))
        if active.withLockIfAvailable({ _ = $0.record(min(value, Self.highestTrackable)) }) == nil {
            skipped.add(1, ordering: .relaxed)
        }
    }

    /// Everything recorded so far. Allocates: call it from a reader thread, not the dispatch thread.
    public func histogram() -> Histogram<UInt64> {
        var fresh = Self.makeHistogram()
        active.withLock { swap(&$0, &fresh) }
        let interval = fresh
        return cumulative.withLock { total in
            total.add(interval)
            return total
        }
    }

    public func summary() -> LatencySummary { LatencySummary(histogram()) }
}

/// Percentiles of a latency histogram, in nanoseconds.
public struct LatencySummary: Sendable, Equatable, Codable {
    public var count: UInt64
    public var p50: UInt64
    public var p99: UInt64
    public var p999: UInt64
    public var max: UInt64

    public init(count: UInt64 = 0, p50: UInt64 = 0, p99: UInt64 = 0, p999: UInt64 = 0, max: UInt64 = 0) {
        self.count = count
        self.p50 = p50
        self.p99 = p99
        self.p999 = p999
        self.max = max
    }

    public init(_ h: Histogram<UInt64>) {
        count = h.totalCount
        guard count > 0 else { p50 = 0; p99 = 0; p999 = 0; max = 0; return }
        p50 = h.valueAtPercentile(50)
        p99 = h.valueAtPercentile(99)
        p999 = h.valueAtPercentile(99.9)
        max = h.max
    }
}

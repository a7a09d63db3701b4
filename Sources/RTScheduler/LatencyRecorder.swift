import Histogram
import Synchronization

/// A latency histogram that the dispatch thread records into and any other thread can read,
/// without copying or allocating on the recording side.
///
/// The writer records into an "active" interval histogram under a lock held for a few
/// instructions. A reader swaps in an empty histogram (kept from the previous read), then adds
/// the interval into the reader side's two histograms — HdrHistogram's interval-recorder pattern:
/// the cumulative one (everything since start) and the pending window (everything since the
/// accounting window's owner last took it). Whoever swaps, both receive the interval, so a reader
/// of the cumulative figures (`histogram()`, `Scheduler.snapshot()`) never steals samples from the
/// window's owner, and the owner never from them.
public final class LatencyRecorder: Sendable {
    /// Values are nanoseconds; anything above this is recorded as this.
    public static let highestTrackable: UInt64 = 60_000_000_000

    struct Totals {
        var cumulative: Histogram<UInt64>
        var window: Histogram<UInt64>
        /// An empty histogram to swap in for the active one: reused, so a read allocates nothing.
        var spare: Histogram<UInt64>
    }

    private let active: Mutex<Histogram<UInt64>>
    private let totals: Mutex<Totals>

    public init() {
        active = Mutex(Self.makeHistogram())
        totals = Mutex(Totals(cumulative: Self.makeHistogram(), window: Self.makeHistogram(), spare: Self.makeHistogram()))
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

    /// Moves the active interval into both reader-side histograms, then runs `body` on them. An
    /// empty interval is left alone (readers that poll often cost the writer nothing); otherwise
    /// the spare goes in, and the interval, merged, becomes the next spare.
    private func collect<R>(_ body: (inout Totals) -> R) -> R {
        totals.withLock { t in
            // Lock order: totals, then active; the writer only ever tries the active lock.
            if active.withLock({ $0.totalCount }) > 0 {
                active.withLock { swap(&$0, &t.spare) }
                t.cumulative.add(t.spare)
                t.window.add(t.spare)
                t.spare.reset()
            }
            return body(&t)
        }
    }

    /// Everything recorded so far. Allocates: call it from a reader thread, not the dispatch thread.
    public func histogram() -> Histogram<UInt64> {
        collect { $0.cumulative }
    }

    public func summary() -> LatencySummary { LatencySummary(histogram()) }

    /// The window since the last call (and everything since start), then a new window begins.
    /// For the accounting window's single owner (`Scheduler.makeAccountingWindow()`): a second
    /// caller would split the windows between them.
    func takeWindow() -> (window: LatencySummary, total: LatencySummary) {
        collect { t in
            let window = LatencySummary(t.window)
            t.window.reset()
            return (window, LatencySummary(t.cumulative))
        }
    }
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

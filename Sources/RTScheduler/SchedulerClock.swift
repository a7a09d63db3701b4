import CRealtime
import Synchronization

/// The scheduler's only source of time. It is injected, so that tests and lockstep simulation
/// run on virtual time and the daemon on CLOCK_MONOTONIC; nothing in RTScheduler reads wall time.
public protocol SchedulerClock: AnyObject, Sendable {
    /// Real-time safe: no allocation, no lock, no blocking.
    func now() -> Instant
    /// True when time moves only when a test advances it. A virtual clock never sleeps.
    var isVirtual: Bool { get }
}

/// CLOCK_MONOTONIC, in nanoseconds. Never jumps with NTP or a settimeofday.
public final class MonotonicClock: SchedulerClock {
    public init() {}
    @inlinable public func now() -> Instant { Instant(nanoseconds: rt_monotonic_ns()) }
    public var isVirtual: Bool { false }
}

/// Virtual time that moves only when told to: starts at zero, refuses to go backwards.
///
/// A handler may call `advance(by:)` to model its own execution time (an overrun, say); the
/// scheduler reads the clock before and after each handler, exactly as it does with real time.
public final class VirtualClock: SchedulerClock {
    private let current: Atomic<Int64>

    public init(start: Instant = .zero) { current = Atomic(start.nanoseconds) }

    public func now() -> Instant { Instant(nanoseconds: current.load(ordering: .acquiring)) }
    public var isVirtual: Bool { true }

    /// Moves time forward to `instant`; an earlier instant is ignored (time never goes back).
    public func advance(to instant: Instant) {
        var old = current.load(ordering: .relaxed)
        while instant.nanoseconds > old {
            let (exchanged, original) = current.compareExchange(
                expected: old, desired: instant.nanoseconds, ordering: .acquiringAndReleasing)
            if exchanged { return }
            old = original
        }
    }

    public func advance(by duration: Duration) {
        precondition(duration >= .zero, "virtual time cannot go backwards")
        current.add(duration.nanoseconds, ordering: .acquiringAndReleasing)
    }
}

import Glibc
import RTScheduler
import SafetyGuard
import Synchronization

/// TEST HOOK for `robotd sim --fault policy-hang|policy-spin`: makes the first critical policy's handler block
/// (waits) or busy-loop (spins) from a given instant until released, so the supervisor's path can
/// be shown end to end. Never configured outside `robotd sim --fault`.
public final class PolicyFaultHook: Sendable {
    public enum Kind: String, Sendable { case hang, spin }
    public let kind: Kind
    /// After the policy's first cycle (ns).
    public let after: Int64
    private let first = Atomic<Int64>(0)
    private let released = Atomic<Bool>(false)
    public let struck = Atomic<Bool>(false)

    public init(kind: Kind, after: Duration) {
        self.kind = kind
        self.after = after.nanoseconds
    }

    /// Lets a stuck handler return (the demo's end, so the dispatch thread can be joined).
    public func release() { released.store(true, ordering: .releasing) }

    func strike(at instant: Instant) {
        if first.load(ordering: .relaxed) == 0 { first.store(instant.nanoseconds, ordering: .relaxed) }
        guard !struck.load(ordering: .relaxed), instant.nanoseconds - first.load(ordering: .relaxed) >= after else { return }
        struck.store(true, ordering: .relaxed)
        while !released.load(ordering: .acquiring) {
            switch kind {
            case .hang: usleep(1000)
            case .spin: continue
            }
        }
    }
}

/// TEST HOOK: makes the first critical policy's step overrun its deadline a fixed number of times
/// (`count` steps in a row, from `after` past its first step), each finishing `lateness` after its
/// deadline: a deterministic source of deadline misses for telemetry tests. It sleeps rather than
/// spins, so a shared machine keeps its other CPU. Never configured outside tests.
public final class PolicyOverrunHook: Sendable {
    public let count: Int
    public let lateness: Duration
    public let after: Duration
    private let first = Atomic<Int64>(0)
    private let done = Atomic<Int>(0)

    public init(count: Int, lateness: Duration, after: Duration = .zero) {
        self.count = count
        self.lateness = lateness
        self.after = after
    }

    /// Overruns done so far.
    public var overruns: Int { done.load(ordering: .acquiring) }

    func strike(release: Instant, deadline: Instant, clock: any SchedulerClock) {
        if first.load(ordering: .relaxed) == 0 { first.store(release.nanoseconds, ordering: .relaxed) }
        guard done.load(ordering: .relaxed) < count, release.nanoseconds - first.load(ordering: .relaxed) >= after.nanoseconds else { return }
        let until = deadline.advanced(byNanoseconds: lateness.nanoseconds)
        while clock.now() <= until {
            usleep(UInt32(clamping: max(50, until.nanoseconds(since: clock.now()) / 1000 + 1)))
        }
        done.add(1, ordering: .releasing)
    }
}

/// TEST HOOK: silences the policy tasks (they run but send nothing), as a control path that
/// stopped producing commands would; the guard's command watchdog must then act.
public final class PolicySilence: Sendable {
    private let silent = Atomic<Bool>(false)
    public init() {}
    public func set(_ value: Bool) { silent.store(value, ordering: .releasing) }
    public var isSilent: Bool { silent.load(ordering: .acquiring) }
}

extension EStopSignal {
    /// The last release's arrival as an instant (nil: none yet).
    var releasedInstant: Instant? { releasedAt > 0 ? Instant(nanoseconds: releasedAt) : nil }
}

import Synchronization

/// The time a circuit breaker's cool-down is measured on; injectable so that tests step it.
public protocol BreakerClock: Sendable {
    func now() -> ContinuousClock.Instant
}

/// The process's monotonic clock.
public struct SystemBreakerClock: BreakerClock {
    public init() {}
    public func now() -> ContinuousClock.Instant { ContinuousClock.now }
}

/// A clock that moves only when told to (tests, lockstep runs).
public final class ManualBreakerClock: BreakerClock {
    private let current: Mutex<ContinuousClock.Instant>
    public init(start: ContinuousClock.Instant = ContinuousClock.now) { current = Mutex(start) }
    public func now() -> ContinuousClock.Instant { current.withLock { $0 } }
    public func advance(by duration: Duration) { current.withLock { $0 = $0.advanced(by: duration) } }
}

public struct BreakerSettings: Sendable, Equatable {
    /// Consecutive failures that open the breaker.
    public var failureThreshold: Int
    /// How long it stays open before one probe request is let through.
    public var coolDown: Duration

    public init(failureThreshold: Int = 3, coolDown: Duration = .seconds(30)) {
        self.failureThreshold = max(1, failureThreshold)
        self.coolDown = coolDown
    }
}

/// Closed → open after `failureThreshold` consecutive failures → half-open after `coolDown` (one
/// probe at a time) → closed when the probe succeeds, open again (a new cool-down) when it fails.
/// A value type; the router keeps one per back end under its lock.
public struct CircuitBreaker: Sendable, Equatable {
    public enum State: Sendable, Equatable, CustomStringConvertible {
        case closed
        case open(until: ContinuousClock.Instant)
        case halfOpen

        public var name: String {
            switch self {
            case .closed: "closed"
            case .open: "open"
            case .halfOpen: "half_open"
            }
        }

        public var description: String { name }
    }

    public enum Admission: Sendable, Equatable {
        case allowed
        /// The one request that tests a half-open breaker.
        case probe
        case refused(retryIn: Duration)
    }

    public let settings: BreakerSettings
    public private(set) var state: State = .closed
    public private(set) var consecutiveFailures = 0
    /// Times it opened since start.
    public private(set) var opened = 0
    private var probeInFlight = false

    public init(_ settings: BreakerSettings = BreakerSettings()) {
        self.settings = settings
    }

    /// Whether a request may go to the back end now; a probe must be followed by `success`,
    /// `failure` or `abandoned`.
    public mutating func admit(now: ContinuousClock.Instant) -> Admission {
        switch state {
        case .closed:
            return .allowed
        case .open(let until):
            guard now >= until else { return .refused(retryIn: until - now) }
            state = .halfOpen
            probeInFlight = true
            return .probe
        case .halfOpen:
            guard !probeInFlight else { return .refused(retryIn: .zero) }
            probeInFlight = true
            return .probe
        }
    }

    /// The back end answered (whatever the validator thinks of the plan: it works).
    public mutating func success() {
        state = .closed
        consecutiveFailures = 0
        probeInFlight = false
    }

    /// The back end failed (timeout, HTTP error, malformed answer …).
    public mutating func failure(now: ContinuousClock.Instant) {
        consecutiveFailures += 1
        probeInFlight = false
        switch state {
        case .halfOpen:
            open(now)
        case .closed where consecutiveFailures >= settings.failureThreshold:
            open(now)
        case .closed, .open:
            break
        }
    }

    /// The back end failed in a way no retry mends (a redirect, a configuration it cannot work
    /// with): open at once, whatever the count, for a cool-down.
    public mutating func trip(now: ContinuousClock.Instant) {
        consecutiveFailures += 1
        probeInFlight = false
        if case .open = state { return }
        open(now)
    }

    /// The request ended without a verdict on the back end (the caller cancelled it).
    public mutating func abandoned() {
        probeInFlight = false
    }

    private mutating func open(_ now: ContinuousClock.Instant) {
        state = .open(until: now.advanced(by: settings.coolDown))
        opened += 1
    }
}

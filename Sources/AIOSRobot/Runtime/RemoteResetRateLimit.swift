import Synchronization

/// Reset requests per user, before any other work on them (docs/mqtt.md, "Floods"): a token
/// bucket of `perSecond` with bursts of `burst` for each user. A request over its user's rate is
/// not parsed, not recorded in `RemoteResetLog` (a flood must not push the useful records out of
/// its 64) and never reaches the control path; it is counted, per user, for the `safety` topic.
///
/// Bounded: the users in `reset_users` have a bucket each; of the others (a broker that lets anyone
/// write any name) at most `trackedOthers` at once, a new one taking the place of one that is idle
/// (its bucket full again and its count reported), the rest sharing one bucket. A flood under
/// many names thus shares one rate, and never touches an authorised user's bucket.
///
/// Written by the MQTT thread, read by the telemetry thread; never touched by the control path.
public final class RemoteResetRateLimit: Sendable {
    public static let perSecond = 2.0
    public static let burst = 4.0
    public static let trackedOthers = 16

    /// Requests refused by one bucket since its last report.
    public struct Suppressed: Sendable, Equatable {
        /// nil: users beyond the tracked ones, together.
        public var user: String?
        public var count: UInt64
        /// Arrival of the first and the last of them (CLOCK_MONOTONIC ns, like `MQTTMessage.arrival`).
        public var first: Int64
        public var last: Int64
    }

    struct Bucket {
        var tokens = RemoteResetRateLimit.burst
        var last: Int64?
        var pending: UInt64 = 0
        var firstPending: Int64 = 0
        var lastPending: Int64 = 0

        /// Refills to `now`, then takes a token if there is one.
        mutating func admit(at now: Int64) -> Bool {
            if let last, now > last {
                tokens = min(RemoteResetRateLimit.burst, tokens + Double(now - last) / 1e9 * RemoteResetRateLimit.perSecond)
            }
            if last.map({ now > $0 }) ?? true { last = now }
            if tokens >= 1 {
                tokens -= 1
                return true
            }
            if pending == 0 { firstPending = now }
            pending &+= 1
            lastPending = now
            return false
        }

        /// Full again by `now` with nothing left to report: its place can go to another user.
        func isIdle(at now: Int64) -> Bool {
            guard pending == 0 else { return false }
            let refilled = tokens + Double(max(0, now - (last ?? now))) / 1e9 * RemoteResetRateLimit.perSecond
            return refilled >= RemoteResetRateLimit.burst
        }
    }

    private struct State {
        var authorised: [String: Bucket]
        var others: [String: Bucket] = [:]
        var shared = Bucket()
        var total: UInt64 = 0
    }

    private let state: Mutex<State>

    public init(authorisedUsers: [String]) {
        state = Mutex(State(authorised: Dictionary(authorisedUsers.map { ($0, Bucket()) }, uniquingKeysWith: { a, _ in a })))
    }

    /// Whether a request of `user` arriving at `arrival` may be looked at.
    public func admit(user: String, at arrival: Int64) -> Bool {
        state.withLock { s in
            var admitted: Bool
            if var bucket = s.authorised[user] {
                admitted = bucket.admit(at: arrival)
                s.authorised[user] = bucket
            } else if var bucket = s.others[user] {
                admitted = bucket.admit(at: arrival)
                s.others[user] = bucket
            } else {
                if s.others.count >= Self.trackedOthers, let idle = s.others.first(where: { $0.value.isIdle(at: arrival) })?.key {
                    s.others.removeValue(forKey: idle)
                }
                if s.others.count < Self.trackedOthers {
                    var bucket = Bucket()
                    admitted = bucket.admit(at: arrival)
                    s.others[user] = bucket
                } else {
                    admitted = s.shared.admit(at: arrival)
                }
            }
            if !admitted { s.total &+= 1 }
            return admitted
        }
    }

    /// Requests refused since start.
    public var suppressedTotal: UInt64 { state.withLock { $0.total } }

    /// What each bucket refused since the previous call (the telemetry thread's report), oldest
    /// first; their counts start again from zero.
    public func drainSuppressed() -> [Suppressed] {
        state.withLock { s in
            var out: [Suppressed] = []
            func take(_ user: String?, _ b: inout Bucket) {
                guard b.pending > 0 else { return }
                out.append(Suppressed(user: user, count: b.pending, first: b.firstPending, last: b.lastPending))
                b.pending = 0
            }
            for (key, var bucket) in s.authorised where bucket.pending > 0 {
                take(key, &bucket)
                s.authorised[key] = bucket
            }
            for (key, var bucket) in s.others where bucket.pending > 0 {
                take(key, &bucket)
                s.others[key] = bucket
            }
            take(nil, &s.shared)
            return out.sorted { ($0.first, $0.user ?? "") < ($1.first, $1.user ?? "") }
        }
    }
}

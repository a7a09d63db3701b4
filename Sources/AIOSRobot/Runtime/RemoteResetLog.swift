import RTScheduler
import SafetyGuard
import Synchronization

/// One remote reset request and what became of it, for the `safety` topic and the audit: who
/// (the MQTT user in the request's topic), when it arrived, the latch it named, the outcome and
/// its reasons.
public struct RemoteResetRecord: Sendable, Equatable {
    public enum Outcome: String, Sendable, BitwiseCopyable {
        case released
        /// Released into the workspace recovery hold (docs/safety.md).
        case releasedIntoRecovery = "released-into-recovery"
        case refused
        /// Not a request now: a retained message (the broker's memory).
        case ignored
    }

    public enum Reason: String, Sendable, BitwiseCopyable {
        /// A retained message: replayed by the broker at every subscribe, not an operator's act now.
        case retained
        /// The user is not in `estop.remote.reset_users`.
        case notAuthorised = "user-not-authorised"
        /// The payload names no latch (`reset 7` or `{"latch": 7}`).
        case noLatchNumber = "no-latch-number"
        /// It names a latch number that is not the current one: sent for an earlier stop state,
        /// or a duplicate (a QoS 1 redelivery) of a request already answered.
        case staleLatch = "stale-latch"
        case notLatched = "not-latched"
        /// A stop ramp is still running.
        case stillStopping = "still-stopping"
        /// Stop causes persist (listed in `causes`).
        case causesPersist = "causes-persist"
        /// The reset queue was full (a flood of requests): this one was not looked at.
        case queueFull = "queue-full"
    }

    /// 1, 2, … in the order recorded: a reader's cursor (`records(after:)`); a gap means records
    /// were overwritten before that reader came.
    public var sequence: UInt64
    /// When the request arrived (the scheduler's clock: CLOCK_MONOTONIC under `robotd run`).
    public var at: Instant
    public var user: String
    /// The latch number the request named; nil when it named none.
    public var latch: UInt64?
    public var outcome: Outcome
    public var reason: Reason?
    /// The stop causes that refused it (with `causesPersist`).
    public var causes: StopCauses

    /// The reason and the causes as words (`["causes-persist", "value-interlock"]`).
    public var reasons: [String] { (reason.map { [$0.rawValue] } ?? []) + causes.kinds.map(\.description) }
}

/// The latest remote reset requests (every one, accepted, refused or ignored), bounded. Written by
/// the MQTT thread (requests refused before they reach the control path) and by the control path
/// itself through a lock-free ring it appends to under the control lock — the control path never
/// takes this log's lock, so no reader can delay it. Readers (the telemetry thread, the summary)
/// take the lock, which folds the control path's decisions in first.
public final class RemoteResetLog: Sendable {
    /// Records kept of the users in `reset_users`, and apart from them of everyone else: other
    /// users' requests (16 names with bursts of 4 and a shared bucket can pass the rate limit at
    /// once) never push an authorised user's records out.
    public static let capacity = 64

    /// A decision of the control path, without strings (the user is an index in `users`).
    struct Decision: BitwiseCopyable, Sendable {
        var at: Instant
        var user: Int
        var latch: UInt64
        var outcome: RemoteResetRecord.Outcome
        var reason: RemoteResetRecord.Reason?
        var causes: StopCauses
    }

    private struct Kept: Sendable {
        var records: [RemoteResetRecord] = []
        var next: UInt64 = 1
    }

    /// `estop.remote.reset_users`, by index.
    let users: [String]
    let decisions = OverwritingRing<Decision>(capacity: 16)
    private let kept = Mutex(Kept())

    init(users: [String]) {
        self.users = users
    }

    /// The records after `sequence` (0: every one kept), oldest first.
    public func records(after sequence: UInt64 = 0) -> [RemoteResetRecord] {
        kept.withLock { k in
            fold(&k)
            return k.records.filter { $0.sequence > sequence }
        }
    }

    /// The sequence number of the latest record (0: none yet).
    public var latestSequence: UInt64 { kept.withLock { k in fold(&k); return k.next - 1 } }

    /// Folds the control path's decisions in (MQTT thread, before each request it passes on): the
    /// ring then never holds more than the reset queue's few undecided requests' decisions, so
    /// none is overwritten even when no reader comes for a long time.
    func collect() {
        kept.withLock { fold(&$0) }
    }

    /// A request answered before the control path (MQTT thread).
    func note(at: Instant, user: String, latch: UInt64?, _ outcome: RemoteResetRecord.Outcome, _ reason: RemoteResetRecord.Reason) {
        kept.withLock { k in
            fold(&k)
            append(&k, at: at, user: user, latch: latch, outcome, reason, causes: [])
        }
    }

    private func fold(_ k: inout Kept) {
        for d in decisions.drain() {
            let user = users.indices.contains(d.user) ? users[d.user] : "?"
            append(&k, at: d.at, user: user, latch: d.latch, d.outcome, d.reason, causes: d.causes)
        }
    }

    private func append(_ k: inout Kept, at: Instant, user: String, latch: UInt64?, _ outcome: RemoteResetRecord.Outcome,
                        _ reason: RemoteResetRecord.Reason?, causes: StopCauses) {
        k.records.append(RemoteResetRecord(sequence: k.next, at: at, user: user, latch: latch, outcome: outcome, reason: reason, causes: causes))
        k.next += 1
        // Over its class's capacity: the oldest record of the same class goes (at most 2 × 64
        // records: the index loops are short).
        let authorised = users.contains(user)
        var sameClass = 0
        for r in k.records where users.contains(r.user) == authorised { sameClass += 1 }
        if sameClass > Self.capacity, let oldest = k.records.firstIndex(where: { users.contains($0.user) == authorised }) {
            k.records.remove(at: oldest)
        }
    }
}

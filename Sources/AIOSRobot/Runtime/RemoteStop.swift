import Actuators
import Foundation
import RTScheduler
import RobotConfig
import SafetyGuard
import Synchronization
import Transports

/// The remote stop and reset over MQTT (`estop.remote`; docs/mqtt.md, "Inbound topics and
/// security"). A stop latches (released only by a reset); a reset request asks the guard, which
/// refuses it while a cause persists. Separate sources, so requests cannot crowd out a stop.
///
/// - Any message on the stop topic stops (a stop must never be lost to its wording). Retained
///   messages are history the broker replays at every subscribe: ignored, on both topics.
/// - Reset requests arrive on `<reset base>/<user>`: MQTT does not say who published, so the
///   broker's ACL ties that level to the publisher's login (`pattern write …/estop/reset/%u`), and
///   robotd acts only for users in `reset_users`.
/// - A request names the latch it releases (`reset 7`, or `{"latch": 7}`): the runtime's latch
///   number (`RuntimeStatus.latchSequence`), which advances at every new stop state (a latch, an
///   escalation, every stop event even while already latched — a remote stop, a one-shot fault,
///   an e-stop press —, a rising stop cause, a release) and whenever a request naming it is
///   answered, accepted or refused. So a request acts at most once — a QoS 1 redelivery or any
///   duplicate names a number already used — and never on a stop state its sender did not see.
///   Each run starts at a random base (`randomLatchBase`): a request kept from an earlier run (a
///   retained message, a script that always sends `reset 1`) practically never names the current
///   number.
///
/// Every request looked at, whatever became of it, goes to `RemoteResetLog` with its user and
/// reasons. Before anything else, each user's requests pass a rate limit (`RemoteResetRateLimit`):
/// what it refuses is only counted (no parsing, no record): cheap, though each message still
/// takes this thread a moment — the broker's ACL is what keeps floods off. The log keeps the
/// records of `reset_users` apart from everyone else's, so other names cannot push them out.
///
/// The keep-alive on `<stop topic>/alive` (`heartbeat_ms`) carries a counter, a decimal number that
/// must be greater than the last one taken in this run: a keep-alive replayed by a bridge,
/// redelivered (QoS 1) or retained does not count as a live operator station. It counts only when
/// delivered at QoS 1, as the stop is: QoS 0 passes a broker queue that drops the stop.
enum RemoteStop {
    /// `SampleValues` tag of a reset request on its way to the control path: [user index, latch].
    static let requestTag: UInt32 = 0x5245_5354  // "REST"
    /// Reset requests whose topic names a longer user (bytes) are only counted (`namesTooLong`).
    static let largestUserName = 64
    /// Latch numbers travel as doubles: exact up to 2^53.
    static let largestLatch: UInt64 = 1 << 53
    /// A run's first latch number: random in 1…2^40. Another run's numbers match it with a chance
    /// of about one in 10^12 per number; 2^13 (≈ 8000) times as many advances as a run could make
    /// fit below `largestLatch`.
    static func randomLatchBase() -> UInt64 {
        var generator = SystemRandomNumberGenerator()
        return UInt64.random(in: 1...(1 << 40), using: &generator)
    }

    static func register(_ remote: RemoteStopSettings, topics: InboundTopics, scheduler: Scheduler, shared: SharedState<Control>,
                         statusCell: LatestValue<RuntimeStatus>, write: @escaping @Sendable (ApprovedCommand) -> Void,
                         counters: RemoteStopCounters, log: RemoteResetLog, limit: RemoteResetRateLimit,
                         alive: InputLink? = nil) -> InputEndpoint {
        let category = StopCategory(rawValue: remote.category) ?? .zero
        let stop = scheduler.addSource("remote-stop", queue: QueueSpec(capacity: 4, overflow: .dropOldest),
                                       subscription: Subscription(priority: .critical, relativeDeadline: .milliseconds(1))) { event in
            shared.update(statusCell) { c in
                c.status.remoteStops += 1
                // A stop event even while latched (the guard counts it, and the latch number
                // advances): a request sent before it must not release it.
                c.guardian.trigger(.remoteStop, category: category, at: event.release, emit: write)
            }
        }
        let decisions = log.decisions
        let clock = scheduler.clock
        // `reject`, not `dropOldest`: a request that finds the queue full is refused and recorded;
        // one already queued is never dropped unseen.
        let reset = scheduler.addSource("remote-reset", queue: QueueSpec(capacity: 4, overflow: .reject),
                                        subscription: Subscription(priority: .normal, relativeDeadline: .milliseconds(50))) { event in
            guard case .values(let v) = event.payload, v.tag == requestTag, v.count == 2,
                  let user = Int(exactly: v[0]), let latch = UInt64(exactly: v[1]) else { return }
            shared.update(statusCell) { c in
                var d = RemoteResetLog.Decision(at: event.release, user: user, latch: latch, outcome: .refused, reason: nil, causes: [])
                // Every level the guard tick reads, read first (as the reset key does): a press whose
                // event is still queued (or was refused by a full queue) is a stop event that the
                // request's sender cannot have seen, and a lost e-stop device, a silent keep-alive,
                // a dropped broker link or a failed back end since the last tick must refuse it.
                let stopEventsBefore = c.guardian.stopEvents
                c.refreshLevels(now: clock.now(), write: write)
                // Stops are dispatched first (critical): a stop that arrived with this request has
                // already advanced the number, so the request names an older stop state.
                guard latch == c.latchSequence && c.guardian.stopEvents == stopEventsBefore else {
                    c.status.staleResetsIgnored += 1
                    d.reason = .staleLatch
                    decisions.append(d)
                    return
                }
                // Answered: the number is used up, whatever the guard says.
                c.stopStateChanged = true
                // The reset happens now, at dispatch, not at the request's arrival: a deadman press
                // made while still latched (between the two) must not count as one after the
                // reset. (The record keeps the arrival; stops are ordered by the latch number.)
                let outcome = c.guardian.reset(at: clock.now())
                c.noteReset(outcome)
                switch outcome {
                case .released: d.outcome = .released
                case .releasedIntoRecovery: d.outcome = .releasedIntoRecovery
                case .notLatched: d.reason = .notLatched
                case .stillStopping: d.reason = .stillStopping
                case .refused(let causes):
                    d.reason = .causesPersist
                    d.causes = causes
                case .resetKeyHeldThrough:
                    d.reason = .causesPersist
                    d.causes = StopCauses(.emergencyStopInput)
                }
                decisions.append(d)
            }
        }
        let users = remote.resetUsers
        // Reset requests at QoS 0: the latch number makes them idempotent, and a flood of them
        // (any login that may write its reset topic) must not fill the broker's queue of QoS 1
        // messages for this client, from which it would drop the newest — a stop.
        var subscriptions = [(filter: topics.stop, qos: 1), (filter: topics.resetFilter, qos: 0)]
        if alive != nil { subscriptions.append((topics.alive, 1)) }
        return .mqtt(.init(subscriptions: subscriptions, handle: { message in
            let arrival = Instant(nanoseconds: message.arrival)
            if let alive, message.topic == topics.alive {
                // A retained keep-alive is the broker's memory, not a live operator station; one
                // whose counter does not advance is a replay or a redelivery.
                guard !message.retained else {
                    counters.retainedIgnored.add(1, ordering: .relaxed)
                    return
                }
                // Only QoS 1 proves the stop's path: a broker whose queue for this client is full
                // drops QoS 1 messages (the stop) but still passes QoS 0 ones.
                guard message.qos >= 1 else {
                    counters.keepAlivesQoS0.add(1, ordering: .relaxed)
                    return
                }
                guard let number = keepAliveNumber(message.payload) else {
                    counters.keepAlivesUnrecognised.add(1, ordering: .relaxed)
                    return
                }
                switch counters.advanceKeepAlive(to: number) {
                case .taken: break
                case .stale:
                    counters.keepAlivesStale.add(1, ordering: .relaxed)
                    return
                case .jumped:
                    counters.keepAlivesJumped.add(1, ordering: .relaxed)
                    return
                }
                alive.noteFrame(at: message.arrival)
                return
            }
            if message.topic == topics.stop {
                guard !message.retained else {
                    counters.retainedIgnored.add(1, ordering: .relaxed)
                    return
                }
                _ = stop.post(.signal(code: 0, value: 0), release: arrival)
                return
            }
            guard let user = topics.user(inResetTopic: message.topic) else { return }
            // A bounded name before anything keeps it (the rate limit's table, the log).
            guard user.utf8.count <= largestUserName else {
                counters.namesTooLong.add(1, ordering: .relaxed)
                return
            }
            // Before any other work (parsing, the log): over its user's rate, only counted.
            guard limit.admit(user: user, at: message.arrival) else {
                counters.rateLimited.add(1, ordering: .relaxed)
                return
            }
            let latch = latchNumber(message.payload)
            if message.retained {
                counters.retainedIgnored.add(1, ordering: .relaxed)
                log.note(at: arrival, user: user, latch: latch, .ignored, .retained)
                return
            }
            guard let index = users.firstIndex(of: user) else {
                counters.unauthorised.add(1, ordering: .relaxed)
                log.note(at: arrival, user: user, latch: latch, .refused, .notAuthorised)
                return
            }
            guard let latch else {
                counters.unrecognised.add(1, ordering: .relaxed)
                log.note(at: arrival, user: user, latch: nil, .refused, .noLatchNumber)
                return
            }
            log.collect()
            let request = SampleValues(tag: requestTag, values: [Double(index), Double(latch)])
            if !reset.post(.values(request), release: arrival).wasAccepted {
                counters.queueFull.add(1, ordering: .relaxed)
                log.note(at: arrival, user: user, latch: latch, .refused, .queueFull)
            }
        }))
    }

    /// The latch a reset request names: `reset 7`, or JSON `{"latch": 7}`; nil otherwise (the bare
    /// word `reset` names none: it could release a later latch than the one it was sent for; a
    /// bare number is no request: any stray number published there would be one).
    static func latchNumber(_ payload: [UInt8]) -> UInt64? {
        guard payload.count <= 256 else { return nil }
        let text = String(decoding: payload, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        let number: UInt64?
        if text.hasPrefix("{") {
            number = try? JSONDecoder().decode(RequestJSON.self, from: Data(text.utf8)).latch
        } else {
            let words = text.split(whereSeparator: \.isWhitespace)
            let digits = words.count == 2 && words[0].lowercased() == "reset" ? words[1] : nil
            number = digits.flatMap { $0.allSatisfy(\.isASCII) ? UInt64($0) : nil }
        }
        return number.flatMap { $0 <= largestLatch ? $0 : nil }
    }

    /// A keep-alive's counter: a decimal number (ASCII digits only, at most 19 of them, so it fits
    /// in 63 bits), surrounded by white space or not; nil otherwise. The operator station's clock
    /// in milliseconds since the Unix epoch is one that never goes back across its restarts.
    static func keepAliveNumber(_ payload: [UInt8]) -> UInt64? {
        guard payload.count <= 64 else { return nil }
        var digits: [UInt8] = []
        var i = 0
        func isSpace(_ b: UInt8) -> Bool { b == 0x20 || (0x09...0x0D).contains(b) }
        while i < payload.count && isSpace(payload[i]) { i += 1 }
        while i < payload.count && (0x30...0x39).contains(payload[i]) {
            digits.append(payload[i])
            i += 1
        }
        while i < payload.count && isSpace(payload[i]) { i += 1 }
        guard i == payload.count, !digits.isEmpty, digits.count <= 19 else { return nil }
        return UInt64(String(decoding: digits, as: UTF8.self))
    }

    private struct RequestJSON: Decodable {
        var latch: UInt64
    }
}

/// Remote stop/reset messages not acted on: retained ones (stop, reset, keep-alive), resets that
/// name no latch, resets of users not in `reset_users`, resets that found the queue full, resets
/// over their user's rate or naming too long a user, keep-alives that are no counter, do not
/// advance it, jump too far or came at QoS 0. (Each reset
/// looked at is also in `RemoteResetLog` with its user; rate-limited ones are not.)
public final class RemoteStopCounters: Sendable {
    public let retainedIgnored = Atomic<UInt64>(0)
    public let unrecognised = Atomic<UInt64>(0)
    public let unauthorised = Atomic<UInt64>(0)
    public let queueFull = Atomic<UInt64>(0)
    /// Reset requests over their user's rate (`RemoteResetRateLimit`): neither parsed nor recorded.
    public let rateLimited = Atomic<UInt64>(0)
    /// Keep-alives whose counter is not greater than the last one taken (replays, redeliveries).
    public let keepAlivesStale = Atomic<UInt64>(0)
    /// Keep-alives whose payload is no counter.
    public let keepAlivesUnrecognised = Atomic<UInt64>(0)
    /// Keep-alives delivered at QoS 0 (published so, or downgraded by the subscription): they do
    /// not prove that the path still carries the QoS 1 stop.
    public let keepAlivesQoS0 = Atomic<UInt64>(0)
    /// The last keep-alive counter taken in this run (0: none yet).
    public let lastKeepAlive = Atomic<UInt64>(0)
    /// Keep-alives whose counter jumped too far (`largestKeepAliveStep`, `largestFirstKeepAlive`).
    public let keepAlivesJumped = Atomic<UInt64>(0)
    /// Reset requests whose user name is longer than `RemoteStop.largestUserName` bytes.
    public let namesTooLong = Atomic<UInt64>(0)

    /// The first keep-alive of a run may be at most this (the station's clock in ms reaches it in
    /// the year 2286), and each later one at most `largestKeepAliveStep` past the last one taken
    /// (in ms, about 116 days): one far-future counter would otherwise make every later keep-alive
    /// stale — a stop path that cannot come back — until robotd restarts.
    public static let largestFirstKeepAlive: UInt64 = 10_000_000_000_000
    public static let largestKeepAliveStep: UInt64 = 10_000_000_000

    enum KeepAliveVerdict { case taken, stale, jumped }

    /// Takes `number` if it is greater than the last one taken and not too far past it (any thread).
    func advanceKeepAlive(to number: UInt64) -> KeepAliveVerdict {
        var current = lastKeepAlive.load(ordering: .relaxed)
        while number > current {
            let limit = current == 0 ? Self.largestFirstKeepAlive : current.addingReportingOverflow(Self.largestKeepAliveStep).partialValue
            guard number <= limit || (current != 0 && limit < current) else { return .jumped }
            let (exchanged, original) = lastKeepAlive.compareExchange(expected: current, desired: number, ordering: .relaxed)
            if exchanged { return .taken }
            current = original
        }
        return .stale
    }
}

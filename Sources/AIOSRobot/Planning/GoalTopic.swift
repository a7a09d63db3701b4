import Foundation
import Planner
import Synchronization
import Transports

/// A goal as it arrived over MQTT: who (the topic's last level, which the broker's ACL ties to the
/// login: one `topic write robotd/+/goal/<user>` line per user in the ACL, never a `%u` pattern, which applies to every login), what, and the request id that makes a QoS 1
/// redelivery recognisable.
public struct GoalArrival: Sendable, Equatable {
    public var user: String
    /// The goal (data, never instructions); nil: the payload held none.
    public var text: String?
    /// The sender's id for this request (`{"goal": …, "id": …}`); nil for a plain-text goal.
    public var id: String?
    public var retained: Bool
    /// CLOCK_MONOTONIC (ns).
    public var arrival: Int64
    /// A structured request for one ability (`{"call": …}`, `AbilityCall`); `text` is then its words.
    public var call: Planner.JSONValue? = nil
}

/// `<prefix>goal/<user>` (docs/mqtt.md, "Inbound topics and security"): subscribed when
/// `planner.goals.mqtt` is on. The payload is the goal in words, or JSON `{"goal": "…", "id": "…"}`
/// (what `robotd goal` sends: the id is how a redelivered request is told from a new one).
public enum GoalTopic {
    public static let endpointName = "planner.goals"

    public static func base(prefix: String) -> String { prefix + "goal" }
    public static func topic(prefix: String, user: String) -> String { base(prefix: prefix) + "/" + user }

    /// The user a goal's topic names, or nil when it is not one (a deeper level, another topic).
    public static func user(in topic: String, prefix: String) -> String? {
        let base = base(prefix: prefix) + "/"
        guard topic.hasPrefix(base) else { return nil }
        let user = topic.dropFirst(base.count)
        return user.contains("/") ? nil : String(user)
    }

    /// Runs on the control connection's MQTT thread, which also carries the remote stop: the topic
    /// is looked at here (a string compare) and the payload's bytes only to tell a stop goal
    /// (`GoalInbox.deliver`); they go to the inbox as they came, parsed on the async lane.
    static func endpoint(prefix: String, inbox: GoalInbox) -> InputEndpoint {
        let base = base(prefix: prefix) + "/"
        return .mqtt(.init(subscriptions: [(filter: base + "+", qos: 1)], handle: { message in
            guard message.topic.hasPrefix(base) else { return }
            let user = message.topic.utf8.dropFirst(base.utf8.count)
            guard !user.contains(UInt8(ascii: "/")) else { return }
            inbox.deliver(user: Substring(user), payload: message.payload, retained: message.retained, arrival: message.arrival)
        }))
    }

    /// The payload's goal and id: JSON `{"goal": "…", "id": "…"}` (a number id is taken as its
    /// text), else the whole payload as UTF-8 text, trimmed. Control characters other than line
    /// breaks and tabs are dropped: the goal is shown on terminals and put in prompts.
    public static func text(_ payload: [UInt8]) -> (text: String?, id: String?) {
        guard payload.count <= 4096 else { return (nil, nil) }
        var raw = String(decoding: payload, as: UTF8.self)
        var id: String?
        if raw.first == "{", let object = try? JSONSerialization.jsonObject(with: Data(payload)) as? [String: Any] {
            guard let goal = object["goal"] as? String else { return (nil, nil) }
            raw = goal
            if let s = object["id"] as? String { id = s } else if let n = object["id"] as? NSNumber { id = n.stringValue }
        }
        return (clean(raw), id.map { String($0.prefix(128)) })
    }

    /// A goal's text as it is kept: control characters other than line breaks and tabs dropped,
    /// blanks around it trimmed; nil when nothing is left.
    public static func clean(_ raw: String) -> String? {
        let cleaned = String(String.UnicodeScalarView(raw.unicodeScalars.filter {
            !$0.properties.generalCategory.isControl || $0 == "\n" || $0 == "\t"
        })).trimmingCharacters(in: .whitespacesAndNewlines)
        return cleaned.isEmpty ? nil : cleaned
    }
}

extension Unicode.GeneralCategory {
    fileprivate var isControl: Bool { self == .control || self == .format }
}

/// Where goals from MQTT wait for the planner service. The MQTT thread — the control connection's,
/// which also carries the remote stop — only looks at the topic and the flags, tells a stop goal
/// from the others by a pass over its bytes (`StopGoal.classify`), and hands the bytes over: a
/// retained goal or a user not in `planner.goals.users` is counted (the newest few kept for the
/// record), any other goal goes to a bounded queue. When it is full, the oldest ordinary goal
/// waiting gives way (counted); a stop goal never gives way to ordinary goals — only to newer stop
/// goals beyond `stopCapacity`, which hold the robot all the same. Parsing, the rate limit, the
/// journal and the log lines happen on the async lane, in the task `attach` starts, in arrival
/// order. A goal flood costs the MQTT thread a few microseconds a message and logs nothing; the
/// stop behind it is not kept waiting, and a stop goal in front of it is not lost.
public final class GoalInbox: Sendable {
    /// Ordinary goals waiting for the service at most: the newest ones.
    public static let capacity = 16
    /// Stop goals waiting at most, beside the ordinary ones: the newest ones.
    public static let stopCapacity = 16
    /// Refused goals (retained, not authorised) waiting to be recorded: the newest ones.
    public static let refusalCapacity = 4
    /// A user name kept for the record is cut to this many bytes (the topic's level may be long).
    static let userBytes = 64
    /// The largest payload a goal may have (`GoalTopic.text`, `AbilityCall.parse` refuse larger ones).
    static let payloadBytes = StopGoal.payloadLimit

    /// A goal as the MQTT thread hands it over.
    struct Raw: Sendable {
        var user: String
        var payload: [UInt8]
        var retained: Bool
        var arrival: Int64
        var authorised: Bool
        /// What the MQTT thread made of the payload: which goals give way when the queue is full.
        var kind: StopGoal.PayloadClass = .ordinary
    }

    /// The goals waiting, in arrival order; a lock held for a few moves of a short array.
    private struct Queue {
        var waiting: [Raw] = []
        var ordinary = 0
        var stops = 0
        var finished = false

        init() { waiting.reserveCapacity(GoalInbox.capacity + GoalInbox.stopCapacity + 1) }

        /// Appends `raw`; returns whether a goal gave way for it.
        mutating func append(_ raw: Raw) -> Bool {
            waiting.append(raw)
            if raw.kind == .ordinary {
                ordinary += 1
                guard ordinary > GoalInbox.capacity, let oldest = waiting.firstIndex(where: { $0.kind == .ordinary }) else { return false }
                waiting.remove(at: oldest)
                ordinary -= 1
                return true
            }
            stops += 1
            guard stops > GoalInbox.stopCapacity else { return false }
            // The first to go: a goal that is only possibly a stop.
            guard let oldest = waiting.firstIndex(where: { $0.kind == .unsure }) ?? waiting.firstIndex(where: { $0.kind == .stop }) else {
                return false
            }
            waiting.remove(at: oldest)
            stops -= 1
            return true
        }

        mutating func next() -> Raw? {
            guard !waiting.isEmpty else { return nil }
            let raw = waiting.removeFirst()
            if raw.kind == .ordinary { ordinary -= 1 } else { stops -= 1 }
            return raw
        }
    }

    private let users: Set<String>
    private let queue = Mutex(Queue())
    /// Rung when a goal arrives at an empty queue: the lane then takes goals until it is empty.
    private let bell: AsyncStream<Void>
    private let bellIn: AsyncStream<Void>.Continuation
    private let refusals: AsyncStream<Raw>
    private let refusalsIn: AsyncStream<Raw>.Continuation
    private let consumers = Mutex<[Task<Void, Never>]>([])
    /// Goals handed over to the queue (listed users, not retained).
    public let received = Atomic<UInt64>(0)
    /// Of those, the ones the MQTT thread took for stop goals (or possibly ones).
    public let stopsReceived = Atomic<UInt64>(0)
    /// Goals pushed out of a full queue by newer ones before the service took them (refused ones
    /// beyond the few recorded included).
    public let dropped = Atomic<UInt64>(0)
    /// Retained goals and goals of users not listed (only the newest few are recorded).
    public let refused = Atomic<UInt64>(0)
    /// Goals that arrived after the service detached (before it attaches, they wait in the queue).
    public let unattended = Atomic<UInt64>(0)

    /// `users`: whose goals are acted on (`planner.goals.users`).
    public init(users: [String] = []) {
        self.users = Set(users)
        (bell, bellIn) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        (refusals, refusalsIn) = AsyncStream.makeStream(of: Raw.self, bufferingPolicy: .bufferingNewest(Self.refusalCapacity))
    }

    /// Hands every goal to `body` on the async lane, in arrival order (refused ones beside them),
    /// until `detach`. Once: the queue ends with `detach`.
    public func attach(_ body: @escaping @Sendable (GoalArrival) -> Void) {
        let bell = self.bell, refusals = self.refusals
        let taking = Task.detached(priority: .utility) { [self] in
            for await _ in bell {
                while let raw = queue.withLock({ $0.next() }) { body(Self.arrival(raw)) }
            }
        }
        let recording = Task.detached(priority: .utility) {
            for await raw in refusals { body(Self.arrival(raw)) }
        }
        consumers.withLock { $0 += [taking, recording] }
    }

    public func detach() {
        queue.withLock { $0.finished = true }
        bellIn.finish()
        refusalsIn.finish()
        consumers.withLock { tasks in
            for task in tasks { task.cancel() }
            tasks.removeAll()
        }
    }

    /// The MQTT thread's part: flags and the user, a pass over the bytes, a copy into the queue.
    /// No parsing into values, no lock of the planner's, no log line.
    func deliver(user: Substring, payload: [UInt8], retained: Bool, arrival: Int64) {
        let name = String(user)
        guard !retained, users.contains(name) else {
            refused.add(1, ordering: .relaxed)
            let kept = String(decoding: name.utf8.prefix(Self.userBytes), as: UTF8.self)
            if case .dropped = refusalsIn.yield(Raw(user: kept, payload: [], retained: retained, arrival: arrival,
                                                     authorised: users.contains(name))) {
                dropped.add(1, ordering: .relaxed)
            }
            return
        }
        // A payload the parsers would refuse anyway (over 4096 bytes) is not kept: 16 of them must
        // not pin hundreds of MB of locked memory. It goes on as an empty goal, refused and recorded.
        let kept = payload.count <= Self.payloadBytes ? payload : []
        let kind = StopGoal.classify(kept)
        let (taken, gaveWay, wasEmpty) = queue.withLock { q -> (Bool, Bool, Bool) in
            guard !q.finished else { return (false, false, false) }
            let wasEmpty = q.waiting.isEmpty
            return (true, q.append(Raw(user: name, payload: kept, retained: false, arrival: arrival, authorised: true, kind: kind)), wasEmpty)
        }
        guard taken else {
            unattended.add(1, ordering: .relaxed)
            return
        }
        received.add(1, ordering: .relaxed)
        if kind != .ordinary { stopsReceived.add(1, ordering: .relaxed) }
        if gaveWay { dropped.add(1, ordering: .relaxed) }
        // A queue that was not empty is being emptied by the lane, which takes this goal too.
        if wasEmpty { bellIn.yield(()) }
    }

    /// On the lane: the payload parsed.
    static func arrival(_ raw: Raw) -> GoalArrival {
        guard raw.authorised, !raw.retained else {
            return GoalArrival(user: raw.user, text: nil, id: nil, retained: raw.retained, arrival: raw.arrival)
        }
        if let c = AbilityCall.parse(raw.payload) {
            return GoalArrival(user: raw.user, text: AbilityCall.text(c.call), id: c.id, retained: false, arrival: raw.arrival,
                               call: c.call)
        }
        let parsed = GoalTopic.text(raw.payload)
        return GoalArrival(user: raw.user, text: parsed.text, id: parsed.id, retained: false, arrival: raw.arrival)
    }
}

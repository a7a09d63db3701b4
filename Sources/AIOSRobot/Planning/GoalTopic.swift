import Foundation
import Planner
import Synchronization
import Transports

/// A goal as it arrived over MQTT: who (the topic's last level, which the broker's ACL ties to the
/// login: `pattern write robotd/+/goal/%u`), what, and the request id that makes a QoS 1
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

    static func endpoint(prefix: String, inbox: GoalInbox) -> InputEndpoint {
        .mqtt(.init(subscriptions: [(filter: base(prefix: prefix) + "/+", qos: 1)], handle: { message in
            guard let user = user(in: message.topic, prefix: prefix) else { return }
            if let c = AbilityCall.parse(message.payload) {
                inbox.deliver(GoalArrival(user: user, text: AbilityCall.text(c.call), id: c.id, retained: message.retained,
                                          arrival: message.arrival, call: c.call))
                return
            }
            let parsed = text(message.payload)
            inbox.deliver(GoalArrival(user: user, text: parsed.text, id: parsed.id, retained: message.retained, arrival: message.arrival))
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
        let cleaned = String(String.UnicodeScalarView(raw.unicodeScalars.filter {
            !$0.properties.generalCategory.isControl || $0 == "\n" || $0 == "\t"
        })).trimmingCharacters(in: .whitespacesAndNewlines)
        return (cleaned.isEmpty ? nil : cleaned, id.map { String($0.prefix(128)) })
    }
}

extension Unicode.GeneralCategory {
    fileprivate var isControl: Bool { self == .control || self == .format }
}

/// Where goals from MQTT wait for the planner service: the MQTT thread hands each one over; the
/// service attaches its handler before the client starts. Never touched by the dispatch thread.
public final class GoalInbox: Sendable {
    private let handler = Mutex<(@Sendable (GoalArrival) -> Void)?>(nil)
    /// Goals that arrived with nobody attached.
    public let unattended = Atomic<UInt64>(0)

    public init() {}

    public func attach(_ body: @escaping @Sendable (GoalArrival) -> Void) { handler.withLock { $0 = body } }
    public func detach() { handler.withLock { $0 = nil } }

    func deliver(_ goal: GoalArrival) {
        guard let body = handler.withLock({ $0 }) else {
            unattended.add(1, ordering: .relaxed)
            return
        }
        body(goal)
    }
}
